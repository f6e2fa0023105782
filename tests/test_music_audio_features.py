"""Decoding a track's excerpt: the samples in the file, whichever libsndfile decodes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from rescnn_appliance.music.audio_features import (
    FEATURE_NAMES,
    features_from_samples,
    read_excerpt,
    use_system_libsndfile,
)
from tests.music_clips import RATE, energetic_major


def test_the_excerpt_is_the_middle_of_the_file_sample_for_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.5, 0.5, (RATE * 12, 2)).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(str(path), stereo, RATE, subtype="PCM_16")
    mono, rate, duration = read_excerpt(path, excerpt_s=4.0)
    library = use_system_libsndfile()
    assert library == "bundled" or Path(library).is_file()
    assert rate == RATE and duration == 12.0 and len(mono) == 4 * RATE
    start = (12 - 4) * RATE // 2
    expected = stereo[start:start + 4 * RATE].mean(axis=1)
    assert np.abs(mono - expected).max() < 2.0 / 32768  # 16-bit rounding, nothing else


def test_features_of_a_clip_do_not_depend_on_its_length_in_frames(tmp_path: Path) -> None:
    """A clip and the same clip with a few extra samples (a frame boundary moves) describe
    the same music: every feature within a few percent of its spread."""
    mono, rate, _ = read_excerpt(energetic_major(tmp_path / "fast.wav"))
    a = features_from_samples(mono, rate)
    b = features_from_samples(np.concatenate([mono, mono[:300]]), rate)
    assert a.shape == b.shape == (len(FEATURE_NAMES),)
    scale = np.maximum(np.abs(a), 1.0)
    assert np.all(np.abs(a - b) / scale < 0.05)
