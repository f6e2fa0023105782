"""A demo music library for machines without the owner's music: short generated clips.

:func:`demo_library` writes a handful of FLAC clips into ``<state dir>/demo-music`` (once; later
calls reuse them): bright major tunes with a fast beat, dark minor ones, slow quiet pads. Each
is made to sound like its mood (mode, tempo, loudness, brightness) and also carries VALENCE and
AROUSAL Vorbis comments, so a library scan puts them in different moods without depending on
the audio model. :func:`music_folders_or_demo` is what ``run`` uses: the configured folders when
any of them holds audio, else the demo library.

Example::

    >>> folder = demo_library(tmp_path)                 # doctest: +SKIP
    >>> sorted(p.name for p in folder.glob("*.flac"))[:2]  # doctest: +SKIP
    ['01-bright-march.flac', '02-sunny-walk.flac']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

RATE = 22050
AUDIO_SUFFIXES = (".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".m4a")
# Semitone steps of the scales from the root.
MAJOR = (0, 2, 4, 5, 7, 9, 11, 12)
MINOR = (0, 2, 3, 5, 7, 8, 10, 12)


@dataclass(frozen=True)
class DemoClip:
    """How one demo clip is made, and the valence/arousal written into its tags.

    Example::

        >>> DemoClip("x", "X", MAJOR, 120, 0.5, 0.8, 0.6, 0.7).beat_s
        0.5
    """

    name: str
    title: str
    scale: tuple[int, ...]
    bpm: float
    loudness: float       # peak amplitude 0..1
    brightness: float     # 0: pure sine, 1: many harmonics
    valence: float
    arousal: float
    root_hz: float = 261.63
    drums: bool = True

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm


CLIPS: tuple[DemoClip, ...] = (
    DemoClip("01-bright-march", "Bright March", MAJOR, 148, 0.85, 0.9, 0.55, 0.75),
    DemoClip("02-sunny-walk", "Sunny Walk", MAJOR, 108, 0.6, 0.6, 0.65, 0.2),
    DemoClip("03-night-drive", "Night Drive", MINOR, 140, 0.9, 0.8, -0.45, 0.7, 220.0),
    DemoClip("04-slow-tide", "Slow Tide", MAJOR, 58, 0.3, 0.15, 0.3, -0.6, 196.0, False),
    DemoClip("05-rainy-window", "Rainy Window", MINOR, 56, 0.25, 0.2, -0.6, -0.4, 220.0, False),
    DemoClip("06-grey-morning", "Grey Morning", MINOR, 72, 0.35, 0.3, -0.5, -0.3, 174.61, False),
)


def _tone(freq: float, seconds: float, brightness: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    harmonics = 1 + round(float(brightness) * 7)
    wave = sum((0.6 ** (k - 1)) * np.sin(2 * np.pi * freq * k * t) for k in range(1, harmonics + 1))
    attack = np.minimum(1.0, t / 0.01)
    decay = np.exp(-t * (1.5 + 4 * brightness))
    return (wave * attack * decay).astype(np.float32)


def synthesize(clip: DemoClip, seconds: float = 20.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """The clip as mono float32 samples in [-1, 1]: a melody over a drone, plus drums."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, np.float32)
    # Drone: the root and fifth, quiet, for the whole clip (it makes the mode audible).
    t = np.arange(n) / rate
    for step in (0, 7, clip.scale[2]):
        out += 0.12 * np.sin(2 * np.pi * clip.root_hz / 2 * 2 ** (step / 12) * t).astype(np.float32)
    # Melody: one note a beat (two for fast tunes), walking the scale.
    note_s = clip.beat_s / (2 if clip.bpm > 100 else 1)
    degree = 0
    for start in np.arange(0.0, seconds - note_s, note_s):
        degree = int(np.clip(degree + rng.choice((-2, -1, 1, 1, 2)), 0, len(clip.scale) - 1))
        freq = clip.root_hz * 2 ** (clip.scale[degree] / 12)
        i = int(start * rate)
        tone = _tone(freq, min(note_s * 1.5, seconds - start), clip.brightness, rate)
        out[i:i + len(tone)] += 0.5 * tone[: n - i]
    if clip.drums:
        kick_t = np.arange(int(0.12 * rate)) / rate
        kick = np.sin(2 * np.pi * (60 + 90 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 25)
        hat = rng.standard_normal(int(0.04 * rate)) * np.exp(-np.arange(int(0.04 * rate)) / 200)
        for k, start in enumerate(np.arange(0.0, seconds - 0.2, clip.beat_s / 2)):
            i = int(start * rate)
            sound = kick if k % 2 == 0 else 0.25 * hat
            out[i:i + len(sound)] += sound[: n - i].astype(np.float32)
    fade = np.minimum(1.0, np.minimum(t / 0.3, (seconds - t) / 0.5)).astype(np.float32)
    out *= fade
    peak = float(np.max(np.abs(out))) or 1.0
    return (out / peak * clip.loudness).astype(np.float32)


def write_clip(clip: DemoClip, folder: Path, seconds: float = 20.0) -> Path:
    """Write ``clip`` as ``<folder>/<name>.flac`` with title, artist, VALENCE and AROUSAL tags."""
    import soundfile as sf
    from mutagen.flac import FLAC

    path = folder / f"{clip.name}.flac"
    tmp = path.with_suffix(".tmp.flac")
    sf.write(str(tmp), synthesize(clip, seconds), RATE, subtype="PCM_16", format="FLAC")
    tags = FLAC(str(tmp))
    tags["title"] = clip.title
    tags["artist"] = "rescnn-appliance demo"
    tags["album"] = "Demo moods"
    tags["valence"] = f"{clip.valence:.2f}"
    tags["arousal"] = f"{clip.arousal:.2f}"
    tags.save()
    tmp.replace(path)  # a clip half written by a killed run is never taken for a whole one
    return path


def demo_library(state_dir: Path | str, seconds: float = 20.0,
                 clips: Iterable[DemoClip] = CLIPS) -> Path:
    """The demo clips in ``<state_dir>/demo-music``, written there the first time."""
    folder = Path(state_dir) / "demo-music"
    folder.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        if not (folder / f"{clip.name}.flac").is_file():
            write_clip(clip, folder, seconds)
    return folder


def has_audio(folder: Path) -> bool:
    """True when ``folder`` exists and holds at least one audio file (searched recursively)."""
    try:
        return folder.is_dir() and any(
            p.suffix.lower() in AUDIO_SUFFIXES for p in folder.rglob("*") if p.is_file())
    except OSError:
        return False


def music_folders_or_demo(folders: Iterable[Path], state_dir: Path) -> tuple[list[Path], bool]:
    """The configured folders that hold audio, else ``[demo library]``; and whether it is the demo."""
    usable = [f for f in folders if has_audio(f)]
    if usable:
        return usable, False
    names = ", ".join(str(f) for f in folders) or "(none configured)"
    log.warning("no audio in library.folders (%s): playing the demo library", names)
    return [demo_library(state_dir)], True
