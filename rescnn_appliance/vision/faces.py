"""Face finding: OpenCV's Haar cascade, with a cheap search near the last face between frames.

:class:`FaceFinder` first searches a window around the face it found last time (a small image,
a narrow range of sizes: about a millisecond); only when that fails does it search the whole
frame, downscaled by ``faces.detect_scale``. Of several faces it takes the largest.
:meth:`Face.crop` cuts the face out the way FER2013 faces are framed, so the models see what
they were trained on.

Example::

    >>> from skimage import data
    >>> import cv2
    >>> frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    >>> finder = FaceFinder()
    >>> face = finder.find(frame)
    >>> face.search, face.crop(48).shape
    ('full', (48, 48))
    >>> finder.find(frame).search        # the next frame is searched near the last face
    'window'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

FACE_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"

# FER2013 faces are the Haar box, centred, a little enlarged: run on 1,193 FER2013 val images
# pasted into a frame, the cascade's box has a median side of 0.974 of the image, centre offset 0
# (benchmarks/RESULTS-vision.md). So a FER-like crop is the box enlarged 1/0.974.
FER_CROP_SCALE = 1.027
# The window search rescales its patch so that the last face is this many pixels wide: just
# above the cascade's 24 px window. The cascade's cost grows with the patch area (48 px: 4-5 ms
# a frame here, 28 px: 1.6 ms) while the demo face is still found in every frame.
TRACK_FACE_PX = 28
# Sizes the window search accepts, relative to the last face (faces do not jump in size).
TRACK_SIZE_RANGE = (0.75, 1.35)
# Neighbours the window search needs: fewer than a full search, since it looks only where a
# face just was and only at its size, so a stray match is much less likely.
TRACK_MIN_NEIGHBORS = 3
# With nobody in view, a frame that differs from the last searched empty frame by less than
# this (mean absolute difference of 40x30 thumbnails, gray levels) is not searched again:
# an empty room costs a thumbnail (~0.1 ms) instead of a full search (~25 ms). Sensor noise
# averages out in the thumbnail; a person walking in changes it by far more.
UNCHANGED_DIFF = 3.0
UNCHANGED_THUMB = (40, 30)
# ...but the whole frame is searched again at least every this many skipped frames.
MAX_UNCHANGED_SKIPS = 8

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    """A face in a frame: ``box`` (x, y, w, h in frame pixels) and how it was found.

    Example::

        >>> frame = np.zeros((480, 640), np.uint8)
        >>> Face((100, 80, 120, 120), frame, "full").crop(48).shape
        (48, 48)
    """

    box: Box
    frame: np.ndarray = field(repr=False, compare=False)
    search: Literal["full", "window"] = "full"

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    def crop(self, size: int = 48) -> np.ndarray:
        """A ``size`` x ``size`` grayscale uint8 crop framed like a FER2013 face.

        Parts of the crop outside the frame repeat the frame's edge pixels. The crop is not
        rotated to level the eyes: FER2013 faces are not levelled either (median roll 3.9
        degrees where the eye cascade finds both eyes), so levelling would move crops away
        from what the models learnt (benchmarks/RESULTS-vision.md).
        """
        cx, cy = self.centre
        side = max(self.box[2], self.box[3]) * FER_CROP_SCALE
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        n = max(round(side), 1)
        patch = _padded_patch(self.frame, x0, y0, n)
        return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def _padded_patch(frame: np.ndarray, x0: int, y0: int, n: int) -> np.ndarray:
    """The n x n square at (x0, y0), edge-replicated where it leaves the frame."""
    h, w = frame.shape[:2]
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + n - w), max(0, y0 + n - h)
    patch = frame[max(0, y0):min(h, y0 + n), max(0, x0):min(w, x0 + n)]
    if left or top or right or bottom:
        if patch.size == 0:
            return np.full((n, n), int(frame.mean()), np.uint8)
        patch = cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return patch


class FaceFinder:
    """Find the largest face in grayscale frames, tracking it from one frame to the next.

    ``detect_scale`` shrinks the frame before a full search; ``min_face`` is the smallest face
    side (full-frame pixels) looked for; ``track_margin`` is how far around the last face (as a
    share of its side) the next frame is searched first. With nobody in view, a frame that
    looks like the last empty one is not searched (``skip_unchanged``). ``last_search`` tells
    what the last call did: ``"window"``, ``"full"``, ``"window+full"`` or ``"unchanged"``.

    Example::

        >>> finder = FaceFinder(detect_scale=0.5, min_face=40, track_margin=0.5)
        >>> finder.find(np.zeros((480, 640), np.uint8)) is None
        True
    """

    def __init__(self, detect_scale: float = 0.5, min_face: int = 40, track_margin: float = 0.5,
                 scale_factor: float = 1.1, min_neighbors: int = 5,
                 skip_unchanged: bool = True) -> None:
        if not 0 < detect_scale <= 1:
            raise ValueError(f"faces.detect_scale must be in (0, 1], got {detect_scale}")
        self.detect_scale = detect_scale
        self.min_face = min_face
        self.track_margin = track_margin
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.skip_unchanged = skip_unchanged
        self._empty_thumb: np.ndarray | None = None
        self._skipped = 0
        self._cascade = _load_cascade(FACE_CASCADE)
        self._last: Box | None = None
        self.last_search = ""

    @classmethod
    def from_settings(cls, faces: Mapping[str, Any]) -> FaceFinder:
        """Build from ``settings.faces``."""
        return cls(detect_scale=faces["detect_scale"], min_face=faces["min_face"],
                   track_margin=faces["track_margin"])

    def reset(self) -> None:
        """Forget the last face and the empty scene; the next call searches the whole frame."""
        self._last = None
        self._empty_thumb = None

    def find(self, frame: np.ndarray) -> Face | None:
        """The largest face in ``frame`` (grayscale uint8, H x W), or None."""
        if frame.ndim != 2 or frame.dtype != np.uint8:
            raise ValueError(f"FaceFinder wants a grayscale uint8 frame, got {frame.dtype} "
                             f"{frame.shape}")
        box, search = None, ""
        if self._last is not None and self.track_margin > 0:
            box, search = self._search_window(frame, self._last), "window"
        elif self._last is None and self._unchanged(frame):
            self.last_search = "unchanged"
            return None
        if box is None:
            box, search = self._search_full(frame), ("window+full" if search else "full")
            self._remember_empty(frame if box is None else None)
        self.last_search = search
        self._last = box
        if box is None:
            return None
        return Face(box, frame, "window" if search == "window" else "full")

    def _thumb(self, frame: np.ndarray) -> np.ndarray:
        return cv2.resize(frame, UNCHANGED_THUMB, interpolation=cv2.INTER_AREA)

    def _unchanged(self, frame: np.ndarray) -> bool:
        if not self.skip_unchanged or self._empty_thumb is None:
            return False
        if self._skipped >= MAX_UNCHANGED_SKIPS:
            return False
        thumb = self._thumb(frame)
        if thumb.shape != self._empty_thumb.shape:
            return False
        if cv2.absdiff(thumb, self._empty_thumb).mean() >= UNCHANGED_DIFF:
            return False
        self._skipped += 1
        return True

    def _remember_empty(self, frame: np.ndarray | None) -> None:
        self._skipped = 0
        self._empty_thumb = None if frame is None or not self.skip_unchanged else self._thumb(frame)

    def _detect(self, image: np.ndarray, min_side: int, max_side: int = 0,
                min_neighbors: int = 0) -> Box | None:
        # No histogram equalisation: the cascade normalises each window's contrast itself, and
        # equalising a frame with a large plain wall hid faces that the raw frame showed.
        min_side = max(min_side, 1)
        found = self._cascade.detectMultiScale(
            image, scaleFactor=self.scale_factor,
            minNeighbors=min_neighbors or self.min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side) if max_side else (0, 0))
        if len(found) == 0:
            return None
        x, y, w, h = max(found, key=lambda b: b[2] * b[3])
        return int(x), int(y), int(w), int(h)

    def _search_full(self, frame: np.ndarray) -> Box | None:
        s = self.detect_scale
        small = frame if s == 1 else cv2.resize(frame, None, fx=s, fy=s,
                                                interpolation=cv2.INTER_AREA)
        box = self._detect(small, int(self.min_face * s))
        return None if box is None else _scale_box(box, 1 / s, 0, 0)

    def _search_window(self, frame: np.ndarray, last: Box) -> Box | None:
        x, y, w, h = last
        side = max(w, h)
        pad = int(side * self.track_margin)
        fh, fw = frame.shape
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(fw, x + w + pad), min(fh, y + h + pad)
        if x1 - x0 < side or y1 - y0 < side:
            return None
        s = min(1.0, TRACK_FACE_PX / side)
        patch = frame[y0:y1, x0:x1]
        if s < 1:
            patch = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        lo, hi = TRACK_SIZE_RANGE
        box = self._detect(patch, int(side * s * lo), math.ceil(side * s * hi),
                           TRACK_MIN_NEIGHBORS)
        return None if box is None else _scale_box(box, 1 / s, x0, y0)


def _scale_box(box: Box, s: float, dx: int, dy: int) -> Box:
    x, y, w, h = box
    return (round(x * s) + dx, round(y * s) + dy, round(w * s), round(h * s))


def _load_cascade(path: Path) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"{path}: cannot load the OpenCV cascade (reinstall opencv-python)")
    return cascade
