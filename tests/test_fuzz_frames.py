"""Fuzz the replay sources with garbage files: frames from the good ones, one line for the rest.

An image folder skips what it cannot decode; a video that cannot be decoded is refused at open
with a line naming it; a broken tail ends the stream. Never another exception.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rescnn_appliance.vision.frames import (
    CameraError,
    EndOfStream,
    ImageFolderSource,
    VideoFileSource,
)
from tests.fuzz_count import FuzzCount, fuzz_settings

COUNT = FuzzCount()
FAST = fuzz_settings(40)
_report_count = COUNT.reporter("frames")


def _png(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (24, 32), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def _jpg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


GOOD = {"png": _png(1), "jpg": _jpg(2)}
kinds = st.sampled_from(["good", "random", "truncated", "empty", "flipped", "wrong-suffix"])


def _bad(kind: str, real: bytes, cut: int, junk: bytes) -> bytes:
    at = cut % len(real)
    return {"random": junk, "truncated": real[:max(1, at // 8)], "empty": b"",
            "flipped": real[:8] + bytes(b ^ 0x5A for b in real[8:])}[kind]


@FAST
@given(files=st.lists(st.tuples(kinds, st.sampled_from(["png", "jpg"]), st.integers(0, 10 ** 6),
                                st.binary(max_size=300)), min_size=1, max_size=6),
       loop=st.booleans())
def test_image_folder_with_garbage(tmp_path: Path, files: list, loop: bool) -> None:
    COUNT.add("image folder")
    folder = tmp_path / "faces"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    good = 0
    for i, (kind, suffix, cut, junk) in enumerate(files):
        if kind == "good":
            (folder / f"{i:02d}.{suffix}").write_bytes(GOOD[suffix])
            good += 1
        elif kind == "wrong-suffix":   # a good PNG named .jpg still decodes
            (folder / f"{i:02d}.jpg").write_bytes(GOOD["png"])
            good += 1
        else:
            (folder / f"{i:02d}.{suffix}").write_bytes(_bad(kind, GOOD[suffix], cut, junk))
    source = ImageFolderSource(folder, loop=loop)
    with source:
        frames = []
        try:
            for _ in range(2 * len(files) + 2):
                frame = source.read()
                assert frame is not None and frame.image.dtype == np.uint8 and frame.image.ndim == 2
                frames.append(frame)
        except EndOfStream:
            assert not loop
        except CameraError as exc:
            assert loop and "\n" not in str(exc) and str(folder) in str(exc)
    # a decodable file is never lost (some random bytes may decode too: at least the good ones)
    if loop and good:
        assert len(frames) == 2 * len(files) + 2
    elif not loop:
        assert len(frames) >= good


def _video(path: Path, frames: int = 12) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


@FAST
@given(kind=st.sampled_from(["random", "truncated", "flipped", "empty", "spliced"]),
       cut=st.integers(0, 10 ** 6), junk=st.binary(max_size=400), loop=st.booleans())
@example(kind="spliced", cut=0, junk=b"\x00", loop=True)  # seeking back failed; found 2026-11-25
def test_video_file_with_garbage(tmp_path: Path, kind: str, cut: int, junk: bytes,
                                 loop: bool) -> None:
    COUNT.add("video file")
    real = _video(tmp_path / "real.avi")
    at = cut % len(real)
    data = {"random": junk, "truncated": real[:at], "empty": b"",
            "flipped": real[:at] + bytes(b ^ 0xFF for b in real[at:at + 64]) + real[at + 64:],
            "spliced": real[:at] + junk + real[at + len(junk):]}[kind]
    path = tmp_path / "clip.avi"
    path.write_bytes(data)
    source = VideoFileSource(path, loop=loop)
    try:
        source.open()
    except CameraError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    try:
        for _ in range(30):
            try:
                frame = source.read()
            except EndOfStream:
                assert not loop
                break
            except CameraError as exc:  # a looping file whose start no longer decodes
                assert loop and "\n" not in str(exc) and str(path) in str(exc)
                break
            assert frame is None or (frame.image.ndim == 2 and frame.image.dtype == np.uint8)
    finally:
        source.close()


def test_missing_and_wrong_kind_paths(tmp_path: Path) -> None:
    COUNT.add("paths")
    for source, words in ((VideoFileSource(tmp_path), "is a directory"),
                          (VideoFileSource(tmp_path / "nope.mp4"), "no such file"),
                          (ImageFolderSource(tmp_path / "nope"), "no such folder"),
                          (ImageFolderSource(tmp_path), "no .png or .jpg")):
        with pytest.raises(CameraError, match=words):
            source.open()
