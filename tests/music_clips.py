"""Real audio written with soundfile for the music tests (no recordings ship with the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050
MAJOR = (0, 4, 7)   # semitones above the root
MINOR = (0, 3, 7)


def _tone(freq: float, n: int, harmonics: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    return sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, harmonics + 1))


def energetic_major(path: Path, seconds: float = 8.0, rate: int = RATE) -> Path:
    """Fast (150 BPM), loud, bright, C major: drum hits on every beat, plucked chord notes."""
    n = int(seconds * rate)
    out = np.zeros(n)
    beat = int(rate * 60 / 150)
    rng = np.random.default_rng(0)
    for k, start in enumerate(range(0, n - beat, beat // 2)):
        seg = min(beat, n - start)
        env = np.exp(-np.arange(seg) / (0.08 * rate))
        root = 261.63 * 2 ** (MAJOR[k % 3] / 12) * (2 if k % 4 == 3 else 1)
        out[start:start + seg] += 0.5 * env * _tone(root, seg, 6, rate)
        if k % 2 == 0:
            hit = min(int(0.05 * rate), seg)
            out[start:start + hit] += 0.6 * rng.standard_normal(hit) * np.exp(
                -np.arange(hit) / (0.01 * rate))
    out += 0.25 * sum(_tone(130.81 * 2 ** (s / 12), n, 4, rate) for s in MAJOR) / 3
    out = 0.9 * out / np.abs(out).max()
    sf.write(str(path), out.astype(np.float32), rate)
    return path


def sad_minor(path: Path, seconds: float = 8.0, rate: int = RATE) -> Path:
    """Slow, quiet, dark A minor: a soft sustained chord swelling once every 4 s."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    chord = sum(_tone(110.0 * 2 ** (s / 12), n, 2, rate) for s in MINOR) / 3
    melody = _tone(220.0 * 2 ** (3 / 12), n, 1, rate) * 0.3
    env = 0.6 + 0.4 * np.sin(2 * np.pi * t / 4.0) ** 2
    out = 0.05 * env * (chord + melody)
    sf.write(str(path), out.astype(np.float32), rate)
    return path


def tone(path: Path, seconds: float = 3.0, freq: float = 440.0, rate: int = RATE,
         fmt: str | None = None) -> Path:
    """A plain sine tone, for tests that only need some valid audio."""
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format=fmt)
    return path
