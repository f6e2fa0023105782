"""A camera stand-in for machines without one, made from a public-domain face.

The face is scikit-image's ``astronaut`` image (Eileen Collins, NASA, public domain). It drifts,
zooms and changes lighting over an empty synthetic room, and leaves the room for a while every
cycle so that the appliance's idle mode (lower frame rate, no face LED) can be seen.

Example::

    >>> demo = DemoSource(640, 480, fps=0)
    >>> demo.scene(5.0).shape          # a face is in view 5 s into each cycle
    (480, 640)
    >>> demo.face_in_view(40.0)        # and the room is empty near the cycle's end
    False
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from rescnn_appliance.vision.frames import CameraError, FrameSource

# The astronaut's head and shoulders in the 512x512 original, and her face inside that crop.
# The crop stops short of the flag patch on her shoulder, which the Haar cascade takes for a face.
SPRITE_BOX = (115, 0, 220, 280)         # x, y, w, h
FACE_IN_SPRITE = (62, 66, 95, 95)       # Haar box of her face, sprite coordinates


def _astronaut_gray() -> np.ndarray:
    """scikit-image's astronaut picture in gray, read straight from the installed package.

    Reading the PNG with OpenCV avoids importing scikit-image (and SciPy): about 40 MB less
    resident memory in the running appliance.
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise CameraError("the demo source needs scikit-image: "
                          "pip install 'rescnn-appliance[demo]'")
    for folder in spec.submodule_search_locations:
        gray = cv2.imread(str(Path(folder) / "data" / "astronaut.png"), cv2.IMREAD_GRAYSCALE)
        if gray is not None:
            return gray
    # A build without the bundled file: let scikit-image fetch it.
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def _astronaut_sprite() -> tuple[np.ndarray, np.ndarray]:
    """Grayscale head-and-shoulders crop and a soft oval mask (float32, 0..1)."""
    gray = _astronaut_gray()
    x, y, w, h = SPRITE_BOX
    sprite = np.ascontiguousarray(gray[y:y + h, x:x + w])
    mask = np.zeros((h, w), np.float32)
    fx, fy, fw, fh = FACE_IN_SPRITE
    centre = (fx + fw // 2, fy + fh // 2 + 20)
    cv2.ellipse(mask, centre, (int(fw * 0.85), int(fh * 1.3)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 8)
    return sprite, mask


def _empty_room(width: int, height: int) -> np.ndarray:
    """A plain room: a lit wall, a door frame and a shelf, blurred like an out-of-focus camera."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    room = 150 + 40 * (1 - ys) - 25 * (xs - 0.5) ** 2
    room = np.broadcast_to(room, (height, width)).astype(np.float32)
    cv2.rectangle(room, (int(width * .72), int(height * .15)), (int(width * .92), height),
                  110, -1)
    cv2.rectangle(room, (int(width * .05), int(height * .35)), (int(width * .3), int(height * .38)),
                  90, -1)
    cv2.line(room, (0, int(height * .85)), (width, int(height * .85)), 120, 3)
    return cv2.GaussianBlur(room, (0, 0), 3)


class DemoSource(FrameSource):
    """Synthetic camera: a real face drifting over an empty room, absent part of each cycle.

    ``scene(t)`` renders the frame ``t`` seconds into the show; ``read()`` renders the current
    time and, like a real camera, delivers at most ``fps`` frames a second (``fps=0``: as fast
    as asked). ``present_s`` seconds with the face are followed by ``absent_s`` without.

    Example::

        >>> with DemoSource(640, 480, fps=0) as demo:
        ...     demo.read().image.shape
        (480, 640)
    """

    name = "demo"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 8.0,
                 present_s: float = 30.0, absent_s: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.present_s, self.absent_s = present_s, absent_s
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._clock = clock
        self._start = 0.0
        self._due = 0.0
        self._room = _empty_room(width, height)
        self._sprite: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    def describe(self) -> str:
        return (f"demo ({self.width}x{self.height}, public-domain astronaut face, "
                f"{self.present_s:.0f} s in view / {self.absent_s:.0f} s away)")

    def face_in_view(self, t: float) -> bool:
        return (t % (self.present_s + self.absent_s)) < self.present_s

    def face_box(self, t: float) -> tuple[int, int, int, int] | None:
        """Where the face is drawn at ``t`` (x, y, w, h in frame pixels), or None when away."""
        if not self.face_in_view(t):
            return None
        m = self._placement(t)
        fx, fy, fw, fh = FACE_IN_SPRITE
        x, y = m @ np.array([fx, fy, 1.0]), m @ np.array([fx + fw, fy + fh, 1.0])
        return int(x[0]), int(x[1]), int(y[0] - x[0]), int(y[1] - x[1])

    def _placement(self, t: float) -> np.ndarray:
        """Affine sprite -> frame: slow drift and zoom, all periods prime so it rarely repeats."""
        scale = (self.height / 480) * (0.95 + 0.3 * math.sin(2 * math.pi * t / 13))
        cx = self.width * (0.5 + 0.18 * math.sin(2 * math.pi * t / 17))
        cy = self.height * (0.45 + 0.06 * math.sin(2 * math.pi * t / 11))
        sw, sh = SPRITE_BOX[2], SPRITE_BOX[3]
        return np.array([[scale, 0, cx - scale * sw / 2], [0, scale, cy - scale * sh / 2]])

    def scene(self, t: float) -> np.ndarray:
        """The frame ``t`` seconds into the show (grayscale uint8, ``height`` x ``width``)."""
        gain = 0.7 + 0.45 * (0.5 + 0.5 * math.sin(2 * math.pi * t / 23))
        frame = self._room
        if self.face_in_view(t):
            if self._sprite is None:
                self._sprite, self._mask = _astronaut_sprite()
            size = (self.width, self.height)
            m = self._placement(t)
            sprite = cv2.warpAffine(self._sprite, m, size, flags=cv2.INTER_LINEAR)
            mask = cv2.warpAffine(self._mask, m, size, flags=cv2.INTER_LINEAR)
            frame = self._room + mask * (sprite.astype(np.float32) - self._room)
        return cv2.convertScaleAbs(frame, alpha=gain)

    def _open(self) -> None:
        if self._sprite is None:
            self._sprite, self._mask = _astronaut_sprite()
        self._start = self._clock()
        self._due = self._start

    def _read(self) -> np.ndarray:
        if self._period:
            now = self._clock()
            if now < self._due:
                time.sleep(self._due - now)
            self._due = max(self._due + self._period, self._clock())
        return self.scene(self._clock() - self._start)

    def set_rate(self, fps: float) -> None:
        self._period = 1.0 / fps if fps > 0 else 0.0
