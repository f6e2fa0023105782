"""Real audio written with soundfile for the music tests (no recordings ship with the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050
MAJOR = (0, 4, 7)   # semitones above the root
MINOR = (0, 3, 7)


def _saw(freq: float, n: int, rate: int, harmonics: int = 12) -> np.ndarray:
    t = np.arange(n) / rate
    return sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, harmonics + 1))


def energetic_major(path: Path, seconds: float = 8.0, rate: int = RATE) -> Path:
    """Fast (150 BPM), loud, bright C major: kick, snare and hi-hats over bright chord stabs."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    out = np.zeros(n)
    eighth = int(rate * 60 / 150 / 2)
    for k, start in enumerate(range(0, n - eighth, eighth)):
        seg = np.arange(eighth)
        chord = sum(_saw(261.63 * 2 ** (s / 12), eighth, rate) for s in MAJOR)
        out[start:start + eighth] += 0.25 * np.exp(-seg / (0.12 * rate)) * chord
        hat = rng.standard_normal(eighth) * np.exp(-seg / (0.02 * rate))
        out[start:start + eighth] += 0.35 * np.diff(hat, prepend=0.0)
        if k % 2 == 0:
            kick = np.sin(2 * np.pi * 60 * seg / rate) * np.exp(-seg / (0.06 * rate))
            out[start:start + eighth] += 0.9 * kick
        if k % 4 == 2:
            out[start:start + eighth] += 0.6 * rng.standard_normal(eighth) * np.exp(
                -seg / (0.05 * rate))
    out += 0.08 * rng.standard_normal(n)
    out = np.tanh(2.5 * out / np.abs(out).max())
    sf.write(str(path), (0.95 * out).astype(np.float32), rate)
    return path


def sad_minor(path: Path, seconds: float = 8.0, rate: int = RATE) -> Path:
    """Slow (60 BPM), quiet, low A minor: a chromatic lament line falling over a held chord,
    in a reverberant room with some hiss (a clean synth reads as calm, not sad)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(2)
    n = int(seconds * rate)
    beat = int(rate * 60 / 60)
    lament = (7, 6, 5, 4, 3, 2, 1, 0)  # E down to A by semitones
    out = 0.3 * sum(_saw(55.0 * 2 ** (s / 12), n, rate, 2) for s in MINOR) / 3
    for k, start in enumerate(range(0, n - beat, beat)):
        seg = np.arange(min(4 * beat, n - start))
        env = (1 - np.exp(-seg / (0.01 * rate))) * np.exp(-seg / (0.5 * rate))
        out[start:start + len(seg)] += env * _saw(110.0 * 2 ** (lament[k % 8] / 12), len(seg),
                                                  rate, 2)
    room = int(0.8 * rate)
    out = fftconvolve(out, rng.standard_normal(room) * np.exp(-np.arange(room) / (room / 5)))[:n]
    out = out / np.abs(out).max() + 0.05 * rng.standard_normal(n)
    sf.write(str(path), (0.08 * out / np.abs(out).max()).astype(np.float32), rate)
    return path


def tone(path: Path, seconds: float = 3.0, freq: float = 440.0, rate: int = RATE,
         fmt: str | None = None) -> Path:
    """A plain sine tone, for tests that only need some valid audio."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format=fmt)
    return path
