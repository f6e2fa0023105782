"""Frame sources: real files written with OpenCV into tmp_path, real FER2013 faces, the demo."""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rescnn_appliance.config import load_settings
from rescnn_appliance.vision.demo_frames import DemoSource
from rescnn_appliance.vision.frames import (
    CameraError,
    EndOfStream,
    ImageFolderSource,
    Picamera2Source,
    ReconnectingSource,
    V4L2Source,
    VideoFileSource,
    open_reconnecting,
    open_source,
)

HAVE_PICAMERA2 = importlib.util.find_spec("picamera2") is not None


def fer_frames(shared_data: Path, count: int) -> list[np.ndarray]:
    """FER2013 val faces upscaled 4x and placed in a 640x480 gray frame (memory only)."""
    data = np.load(shared_data / "fer2013" / "fer2013_trainval.npz")
    faces = data["x_val"][data["exact_val"]][:count]
    frames = []
    for face in faces:
        frame = np.full((480, 640), 128, np.uint8)
        frame[144:336, 224:416] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        frames.append(frame)
    return frames


def camera_settings(**overrides: object):
    return load_settings(path=None,
                         overrides={f"camera.{k}": v for k, v in overrides.items()}).camera


@pytest.fixture()
def fer_folder(tmp_path: Path, shared_data: Path) -> tuple[Path, list[np.ndarray]]:
    folder = tmp_path / "faces"
    folder.mkdir()
    frames = fer_frames(shared_data, 3)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"face{i:02d}.png"), frame)
    (folder / "notes.txt").write_text("not an image")
    return folder, frames


def test_folder_yields_images_in_name_order_then_stops(fer_folder) -> None:
    folder, written = fer_folder
    with ImageFolderSource(folder) as source:
        frames = list(source)
    assert len(frames) == 3
    for frame, original in zip(frames, written):
        assert frame.image.dtype == np.uint8 and frame.image.shape == (480, 640)
        assert np.array_equal(frame.image, original)
    assert frames[0].t <= frames[1].t <= frames[2].t


def test_folder_loops_when_asked(fer_folder) -> None:
    folder, written = fer_folder
    with ImageFolderSource(folder, loop=True) as source:
        images = [source.read().image for _ in range(7)]
    assert np.array_equal(images[3], written[0])
    assert np.array_equal(images[6], written[0])


def test_folder_skips_an_undecodable_image_with_one_line_naming_it(fer_folder, caplog) -> None:
    folder, _ = fer_folder
    bad = folder / "face01.png"
    bad.write_bytes(b"\x89PNG broken")
    with caplog.at_level(logging.WARNING), ImageFolderSource(folder) as source:
        frames = list(source)
    assert len(frames) == 2
    assert [r.getMessage() for r in caplog.records] == [f"{bad}: cannot decode as an image, skipped"]


def test_video_written_with_opencv_plays_back_and_loops(tmp_path: Path, shared_data: Path) -> None:
    path = tmp_path / "replay.avi"
    frames = fer_frames(shared_data, 3) * 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (640, 480))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()

    with VideoFileSource(path) as video:
        played = [f.image for f in video]
        with pytest.raises(EndOfStream):
            video.read()
    assert len(played) == len(frames)
    for image, original in zip(played, frames):
        assert image.shape == (480, 640) and image.dtype == np.uint8
        assert np.abs(image.astype(int) - original).mean() < 4  # MJPG is lossy, barely

    with VideoFileSource(path, loop=True) as video:
        looped = [video.read().image for _ in range(len(frames) + 2)]
    assert np.abs(looped[len(frames)].astype(int) - frames[0]).mean() < 4


@pytest.mark.parametrize("source", ["folder", "video"])
def test_missing_path_is_one_line_naming_it(tmp_path: Path, source: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(CameraError) as err:
        open_source(camera_settings(source=source, path=str(missing)))
    message = str(err.value)
    assert str(missing) in message and "\n" not in message
    assert ("no such folder" if source == "folder" else "no such file") in message


def test_empty_path_names_the_setting() -> None:
    with pytest.raises(CameraError, match=r"camera\.path is empty"):
        open_source(camera_settings(source="video"))


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is text")
    with pytest.raises(CameraError, match="cannot decode as a video"):
        VideoFileSource(fake).open()


def test_folder_without_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="no .png or .jpg images"):
        ImageFolderSource(tmp_path).open()


@pytest.mark.skipif(HAVE_PICAMERA2, reason="picamera2 is installed here (a Pi)")
def test_picamera2_absent_says_how_to_get_it() -> None:
    with pytest.raises(CameraError) as err:
        Picamera2Source().open()
    assert "picamera2 is not installed" in str(err.value)
    assert "python3-picamera2" in str(err.value)


def test_missing_webcam_names_the_device() -> None:
    with pytest.raises(CameraError, match=r"/dev/video99: no such video device"):
        V4L2Source(99).open()


@pytest.mark.skipif(HAVE_PICAMERA2, reason="picamera2 is installed here (a Pi)")
def test_auto_without_any_camera_falls_back_to_the_demo(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rescnn_appliance.vision.frames"):
        source = open_source(camera_settings(source="auto", device=99))
    with source:
        assert isinstance(source, DemoSource)
        frame = source.read()
    assert frame.image.shape == (480, 640)
    skipped = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert len(skipped) == 2
    assert "picamera2 not used: picamera2 is not installed" in skipped[0]
    assert "v4l2 not used: /dev/video99: no such video device" in skipped[1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("camera auto: no camera found, showing")


@pytest.mark.skipif(HAVE_PICAMERA2, reason="picamera2 is installed here (a Pi)")
def test_auto_prefers_the_configured_folder_over_the_demo(fer_folder) -> None:
    folder, written = fer_folder
    with open_source(camera_settings(source="auto", device=99, path=str(folder))) as source:
        assert isinstance(source, ImageFolderSource) and source.loop
        assert np.array_equal(source.read().image, written[0])


def test_demo_is_paced_like_a_camera() -> None:
    started = time.monotonic()
    with DemoSource(320, 240, fps=50) as demo:
        stamps = [demo.read().t for _ in range(6)]
    # 50 fps: the sixth frame comes no sooner than five frame periods after opening.
    assert stamps[-1] - started >= 5 * 0.02
    assert np.all(np.diff(stamps) > 0)


def test_reconnecting_source_waits_with_growing_backoff_then_recovers(fer_folder) -> None:
    folder, written = fer_folder
    now = [100.0]
    source = ReconnectingSource(lambda: ImageFolderSource(folder, loop=True),
                                retry_max_s=2.0, clock=lambda: now[0])
    with source:
        assert np.array_equal(source.read().image, written[0])
        saved = {p: p.read_bytes() for p in folder.glob("*.png")}
        for p in saved:
            p.unlink()                          # the camera goes away
        assert source.read() is None
        assert not source.is_connected
        assert "no .png or .jpg images" in source.last_error or "decoded" in source.last_error
        now[0] += 0.5
        assert source.read() is None            # still inside the first 1 s back-off
        now[0] += 0.6
        assert source.read() is None            # retried, still gone: next wait is 2 s
        now[0] += 1.5
        assert source.read() is None
        for p, data in saved.items():
            p.write_bytes(data)                 # it comes back
        now[0] += 0.6
        frame = source.read()
        assert source.is_connected
        assert np.array_equal(frame.image, written[0])


@pytest.mark.skipif(HAVE_PICAMERA2, reason="picamera2 is installed here (a Pi)")
def test_open_reconnecting_reports_a_wrong_setting_at_once(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="no such folder"):
        open_reconnecting(camera_settings(source="folder", path=str(tmp_path / "gone")))
