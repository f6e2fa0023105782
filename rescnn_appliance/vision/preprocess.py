"""The one preprocessing path for face crops, shared by training and inference.

As in the ReSCNN-VA paper: noise reduction (a 3x3 median, which removes impulse noise, then a
light Gaussian filter), size standardisation to 48x48, and per-image standardisation to zero mean
and unit variance, which also cancels a global illumination gain.

Example::

    >>> import numpy as np
    >>> faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    >>> x = prepare_faces(faces)
    >>> x.shape, x.dtype
    ((2, 1, 48, 48), dtype('float32'))
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 48
GAUSSIAN_SIGMA = 0.6


class FaceInputError(ValueError):
    """A batch of face crops with the wrong shape or dtype."""


def check_faces(faces: np.ndarray) -> np.ndarray:
    """Accept (N,48,48) or (48,48) uint8; raise :class:`FaceInputError` with one line otherwise."""
    if not isinstance(faces, np.ndarray):
        raise FaceInputError(f"faces must be a numpy array, got {type(faces).__name__}")
    if faces.dtype != np.uint8:
        raise FaceInputError(f"faces must be uint8 grey crops, got dtype {faces.dtype}")
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
        raise FaceInputError(f"faces must have shape (N,{FACE_SIZE},{FACE_SIZE}), got {faces.shape}")
    return faces


def denoise(face: np.ndarray) -> np.ndarray:
    """Median 3x3 then Gaussian (sigma 0.6) on one uint8 (H,W) image."""
    return cv2.GaussianBlur(cv2.medianBlur(face, 3), (3, 3), GAUSSIAN_SIGMA)


def standardise(x: np.ndarray) -> np.ndarray:
    """Per-image zero mean, unit variance over the last two axes (float32)."""
    x = x.astype(np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    return (x - mean) / np.maximum(std, 4.0)


def prepare_faces(faces: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """(N,48,48) uint8 crops -> (N,1,size,size) float32 network input."""
    faces = check_faces(faces)
    out = np.empty((faces.shape[0], 1, size, size), dtype=np.float32)
    for i, face in enumerate(faces):
        clean = denoise(face)
        if size != FACE_SIZE:
            # the exact (integer) kernel gives the same pixels on x86_64 and aarch64
            clean = cv2.resize(clean, (size, size), interpolation=cv2.INTER_LINEAR_EXACT)
        out[i, 0] = standardise(clean)
    return out
