"""Frame sources: one small interface over the Pi camera, a USB webcam, a video, a folder, a demo.

Every source yields grayscale ``uint8`` frames of shape ``(H, W)`` with a ``time.monotonic()``
timestamp taken when the frame arrived. Frames live only in memory: no source writes an image.

- :meth:`FrameSource.read` returns a :class:`Frame`, ``None`` on a temporary failure (a dropped
  frame, a grab that timed out), raises :class:`CameraError` with a one-line reason when the
  device is gone or cannot be opened, and raises :class:`EndOfStream` when a finite source
  (a video or folder without ``loop``) has nothing more to give.
- :func:`open_source` picks the backend from ``settings.camera``; ``source = "auto"`` tries the
  Pi camera, then a V4L2 webcam, then ``camera.path`` (video file or image folder) when set, then
  the demo, and logs why each one it skipped was not usable.

Example::

    >>> from rescnn_appliance.config import load_settings
    >>> settings = load_settings(path=None, overrides={"camera.source": "demo"})
    >>> with open_source(settings.camera) as source:
    ...     frame = source.read()
    >>> frame.image.shape, frame.image.dtype.name
    ((480, 640), 'uint8')
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Self

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A live camera that fails this many grabs in a row is treated as gone.
MAX_FAILED_GRABS = 10


class CameraError(Exception):
    """A frame source cannot be used; the message is one line naming the device or path."""


class EndOfStream(Exception):
    """A finite source (video file or image folder without ``loop``) has no more frames."""


class Frame(NamedTuple):
    """One grayscale frame and when it arrived (``time.monotonic()`` seconds).

    Example::

        >>> f = Frame(np.zeros((480, 640), np.uint8), 12.5)
        >>> image, t = f
        >>> image.shape, t
        ((480, 640), 12.5)
    """

    image: np.ndarray
    t: float


class FrameSource:
    """Base class of every backend: ``open()``, ``read()``, ``close()``, a context manager.

    Subclasses implement ``_open``, ``_read`` (return an image, or ``None`` on a temporary
    failure) and ``_close``. Iterating yields frames until :class:`EndOfStream`, skipping
    temporary failures.

    Example::

        >>> with ImageFolderSource("/nonexistent") as source:  # doctest: +SKIP
        ...     for frame in source:
        ...         print(frame.image.shape)
    """

    name = "source"

    def __init__(self) -> None:
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    def describe(self) -> str:
        """One line saying what this source reads from, for logs and ``doctor``."""
        return self.name

    def open(self) -> FrameSource:
        if not self._is_open:
            self._open()
            self._is_open = True
            log.info("frame source opened: %s", self.describe())
        return self

    def read(self) -> Frame | None:
        if not self._is_open:
            raise CameraError(f"{self.describe()}: read() before open()")
        image = self._read()
        if image is None:
            return None
        return Frame(image, time.monotonic())

    def close(self) -> None:
        if self._is_open:
            self._is_open = False
            self._close()

    def set_rate(self, fps: float) -> None:
        """Hint how often frames will be read; live cameras slow down to save power."""

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self.read()
            except EndOfStream:
                return
            if frame is not None:
                yield frame

    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def to_gray(image: np.ndarray) -> np.ndarray:
    """A grayscale ``uint8`` view of a BGR, BGRA or already gray image."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class Picamera2Source(FrameSource):
    """The Raspberry Pi camera through picamera2 (libcamera), read as the Y plane of YUV420.

    The ISP scales the sensor image to ``width`` x ``height`` and hands over YUV420; the first
    ``height`` rows of that buffer are the luminance, which is the grayscale frame the models
    want, so no colour conversion runs on the Pi's CPU.

    Example::

        >>> with Picamera2Source(640, 480, fps=8) as cam:  # doctest: +SKIP
        ...     frame = cam.read()
    """

    name = "picamera2"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 8.0,
                 camera_num: int = 0) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.camera_num = width, height, fps, camera_num
        self._camera: Any = None
        self._size = (width, height)
        self._failures = 0

    def describe(self) -> str:
        return f"Raspberry Pi camera {self.camera_num} ({self.width}x{self.height} YUV420)"

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(
                "picamera2 is not installed: it exists only on Raspberry Pi OS "
                "(sudo apt install python3-picamera2; a venv needs --system-site-packages)"
            ) from None
        camera = None
        try:
            if not Picamera2.global_camera_info():
                raise CameraError("no Raspberry Pi camera detected: check the ribbon cable and "
                                  "'rpicam-hello --list-cameras'")
            camera = Picamera2(self.camera_num)
            config = camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)},
                buffer_count=2,
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises RuntimeError, IndexError, OSError...
            if camera is not None:
                camera.close()  # release it, or the next attempt finds the camera busy
            if isinstance(exc, CameraError):
                raise
            raise CameraError(f"Raspberry Pi camera {self.camera_num} could not start: "
                              f"{_one_line(exc)}") from None
        # libcamera may align the size; read back what was configured.
        self._size = tuple(camera.camera_config["main"]["size"])
        self._camera = camera
        self._failures = 0

    def _read(self) -> np.ndarray | None:
        try:
            yuv = self._camera.capture_array("main")
        except Exception as exc:  # noqa: BLE001 - any capture failure counts toward "gone"
            return self._failed(exc)
        self._failures = 0
        width, height = self._size
        # The array is (height * 3 / 2, stride): Y rows first, then U and V.
        return np.ascontiguousarray(yuv[:height, :width])

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        log.warning("picamera2 capture failed (%d in a row): %s", self._failures, _one_line(exc))
        if self._failures >= MAX_FAILED_GRABS:
            raise CameraError(f"Raspberry Pi camera {self.camera_num} stopped delivering frames: "
                              f"{_one_line(exc)}")

    def set_rate(self, fps: float) -> None:
        if self._camera is not None and fps > 0:
            try:
                self._camera.set_controls({"FrameRate": float(fps)})
            except Exception as exc:  # noqa: BLE001 - a rate hint must never stop the camera
                log.debug("picamera2 refused FrameRate %s: %s", fps, exc)

    def _close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


class V4L2Source(FrameSource):
    """A USB (UVC) webcam through OpenCV's V4L2 backend, converted to grayscale.

    The driver's queue is cut to one buffer so that a slow reader (idle mode) gets a fresh frame,
    not one that waited in the queue.

    Example::

        >>> with V4L2Source(0, 640, 480) as cam:  # doctest: +SKIP
        ...     frame = cam.read()
    """

    name = "v4l2"

    def __init__(self, index: int = 0, width: int = 640, height: int = 480,
                 fps: float = 8.0) -> None:
        super().__init__()
        self.index, self.width, self.height, self.fps = index, width, height, fps
        self.device = Path(f"/dev/video{index}")
        self._capture: cv2.VideoCapture | None = None
        self._failures = 0

    def describe(self) -> str:
        return f"V4L2 webcam {self.device} ({self.width}x{self.height})"

    def _open(self) -> None:
        if not self.device.exists():
            raise CameraError(f"{self.device}: no such video device (is a USB webcam plugged in?)")
        if not os.access(self.device, os.R_OK | os.W_OK):
            raise CameraError(f"{self.device}: permission denied (add the user to group 'video')")
        capture = cv2.VideoCapture(self.index, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"{self.device}: OpenCV could not open it as a V4L2 camera")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture = capture
        self._failures = 0

    def _read(self) -> np.ndarray | None:
        assert self._capture is not None
        ok, image = self._capture.read()
        if ok and image is not None:
            self._failures = 0
            return to_gray(image)
        self._failures += 1
        if not self.device.exists():
            raise CameraError(f"{self.device}: webcam disconnected")
        if self._failures >= MAX_FAILED_GRABS:
            raise CameraError(f"{self.device}: {self._failures} grabs in a row failed")
        return None

    def _close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class VideoFileSource(FrameSource):
    """Frames of a video file decoded by OpenCV, optionally looping back to the start.

    Example::

        >>> with VideoFileSource("clip.mp4", loop=True) as video:  # doctest: +SKIP
        ...     frame = video.read()
    """

    name = "video"

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.loop = loop
        self._capture: cv2.VideoCapture | None = None

    def describe(self) -> str:
        return f"video file {self.path}" + (" (looping)" if self.loop else "")

    def _open(self) -> None:
        if not self.path.is_file():
            what = "is a directory, not a video file" if self.path.is_dir() else "no such file"
            raise CameraError(f"{self.path}: {what}")
        probe = cv2.VideoCapture(str(self.path))
        ok = probe.isOpened() and probe.read()[0]
        probe.release()
        if not ok:
            raise CameraError(f"{self.path}: cannot decode as a video")
        self._capture = cv2.VideoCapture(str(self.path))

    def _read(self) -> np.ndarray | None:
        assert self._capture is not None
        ok, image = self._capture.read()
        if not ok and self.loop:
            # reopened rather than seeked: seeking back fails in a damaged file that still plays
            self._capture.release()
            self._capture = cv2.VideoCapture(str(self.path))
            ok, image = self._capture.read()
            if not ok:
                raise CameraError(f"{self.path}: no frame decodes from the start any more")
        if not ok:
            raise EndOfStream(str(self.path))
        return to_gray(image)

    def _close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class ImageFolderSource(FrameSource):
    """The ``.png``/``.jpg`` files of a folder in name order, optionally looping.

    A file that cannot be decoded is logged once with its name and skipped.

    Example::

        >>> with ImageFolderSource("faces/", loop=False) as folder:  # doctest: +SKIP
        ...     frames = list(folder)
    """

    name = "folder"

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.loop = loop
        self.files: list[Path] = []
        self._next = 0
        self._bad: set[Path] = set()

    def describe(self) -> str:
        return f"image folder {self.path} ({len(self.files)} images" + (
            ", looping)" if self.loop else ")")

    def _open(self) -> None:
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "no such folder"
            raise CameraError(f"{self.path}: {what}")
        self.files = sorted(p for p in self.path.iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise CameraError(f"{self.path}: no .png or .jpg images in this folder")
        self._next = 0
        self._bad = set()

    def _read(self) -> np.ndarray | None:
        while True:
            if self._next >= len(self.files):
                if not self.loop:
                    raise EndOfStream(str(self.path))
                if len(self._bad) == len(self.files):
                    raise CameraError(f"{self.path}: none of the images can be decoded")
                self._next = 0
            path = self.files[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                return image
            if path not in self._bad:
                self._bad.add(path)
                log.warning("%s: cannot decode as an image, skipped", path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _demo_source(camera: Mapping[str, Any]) -> FrameSource:
    from rescnn_appliance.vision.demo_frames import DemoSource

    return DemoSource(camera["width"], camera["height"], fps=camera["fps"])


def _path_source(camera: Mapping[str, Any], kind: str | None = None) -> FrameSource:
    path = str(camera["path"]).strip()
    if not path:
        want = "an image folder" if kind == "folder" else "a video file"
        raise CameraError(f"camera.path is empty: set it to {want} for camera.source = {kind}")
    target = Path(path).expanduser()
    if kind == "folder" or (kind is None and target.is_dir()):
        return ImageFolderSource(target, loop=True)
    return VideoFileSource(target, loop=True)


def source_factories(camera: Mapping[str, Any]) -> dict[str, Callable[[], FrameSource]]:
    """One unopened-source builder per ``camera.source`` word, from ``settings.camera``."""
    w, h, fps = camera["width"], camera["height"], camera["fps"]
    return {
        "picamera2": lambda: Picamera2Source(w, h, fps),
        "v4l2": lambda: V4L2Source(camera["device"], w, h, fps),
        "video": lambda: _path_source(camera, "video"),
        "folder": lambda: _path_source(camera, "folder"),
        "demo": lambda: _demo_source(camera),
    }


def open_source(camera: Mapping[str, Any]) -> FrameSource:
    """Open the source that ``settings.camera`` names, or the first that works for ``auto``.

    ``auto`` order: Pi camera, V4L2 webcam, ``camera.path`` (when set), demo. Video files and
    folders loop so the appliance keeps running. Raises :class:`CameraError` when the named
    source (or, for ``auto``, every candidate) cannot be opened.
    """
    factories = source_factories(camera)
    choice = camera["source"]
    if choice != "auto":
        return factories[choice]().open()
    order = ["picamera2", "v4l2"]
    if str(camera["path"]).strip():
        order.append("path")
    order.append("demo")
    reasons = []
    for name in order:
        try:
            source = _path_source(camera) if name == "path" else factories[name]()
            source.open()
        except CameraError as exc:
            log.info("camera auto: %s not used: %s", name, exc)
            reasons.append(f"{name}: {exc}")
            continue
        if name == "demo":
            log.warning("camera auto: no camera found, showing the demo (%s)", "; ".join(reasons))
        return source
    raise CameraError("no frame source works (" + "; ".join(reasons) + ")")


class ReconnectingSource(FrameSource):
    """Wraps a source builder; when the device goes, retries with a growing back-off.

    While the device is away ``read()`` returns ``None`` without blocking; the wait between
    attempts doubles from 1 s up to ``retry_max_s``. ``is_connected`` says whether frames flow.

    Example::

        >>> cam = ReconnectingSource(lambda: V4L2Source(0), retry_max_s=30)  # doctest: +SKIP
        >>> with cam:
        ...     frame = cam.read()   # None while the webcam is unplugged
    """

    name = "reconnecting"

    def __init__(self, build: Callable[[], FrameSource], retry_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 first: FrameSource | None = None) -> None:
        super().__init__()
        self._build = build
        self.retry_max_s = max(retry_max_s, 0.0)
        self._clock = clock
        self._inner: FrameSource | None = first if first is not None and first.is_open else None
        self.name = first.name if first is not None else self.name
        self._delay = 1.0
        self._retry_at = 0.0
        self._rate = 0.0
        self.last_error = ""

    @property
    def is_connected(self) -> bool:
        return self._inner is not None

    def describe(self) -> str:
        return self._inner.describe() if self._inner else f"{self.name} (waiting for camera)"

    def _open(self) -> None:
        if self._inner is None:
            self._inner = self._build().open()
        self._delay = 1.0

    def read(self) -> Frame | None:
        if not self._is_open:
            raise CameraError(f"{self.describe()}: read() before open()")
        if self._inner is None:
            if self._clock() < self._retry_at:
                return None
            try:
                self._inner = self._build().open()
                self._delay = 1.0
                if self._rate:
                    self._inner.set_rate(self._rate)
                log.info("camera back: %s", self._inner.describe())
            except CameraError as exc:
                self._lost(exc)
                return None
        try:
            return self._inner.read()
        except CameraError as exc:
            self._inner.close()
            self._inner = None
            self._lost(exc)
            return None

    def _lost(self, exc: CameraError) -> None:
        self.last_error = str(exc)
        self._retry_at = self._clock() + self._delay
        log.warning("camera unavailable, retry in %.0f s: %s", self._delay, exc)
        self._delay = min(self._delay * 2, max(self.retry_max_s, 1.0))

    def set_rate(self, fps: float) -> None:
        self._rate = fps
        if self._inner is not None:
            self._inner.set_rate(fps)

    def _close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


def open_reconnecting(camera: Mapping[str, Any]) -> ReconnectingSource:
    """:func:`open_source`, wrapped so that a lost device is reopened (same backend) later.

    Raises :class:`CameraError` at once when no source can be opened at all, so that a wrong
    setting is reported at start rather than retried for ever.
    """
    first = open_source(camera)
    build = source_factories(camera)[first.name]
    wrapped = ReconnectingSource(build, camera["retry_max_s"], first=first)
    return wrapped.open()
