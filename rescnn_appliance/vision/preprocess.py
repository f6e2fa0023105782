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
STD_FLOOR = 4.0  # grey levels: a flat crop is not blown up into noise


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


def _standardise_into(out: np.ndarray, image: np.ndarray) -> None:
    """Zero mean, unit variance (deviation floored at ``STD_FLOOR``) of one uint8 (H,W) image,
    written into ``out`` (float32 (H,W)); mean and deviation are taken in float64."""
    mean, std = cv2.meanStdDev(image)
    np.subtract(image, mean[0, 0], out=out, dtype=np.float32)
    out *= np.float32(1.0 / max(std[0, 0], STD_FLOOR))


def prepare_inputs(faces: np.ndarray, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """(N,48,48) uint8 crops -> one (N,1,size,size) float32 network input per size in ``sizes``.

    Each face is denoised once for all sizes (the appliance feeds the ECNN at 48 and the VA
    net at its own size). Example::

        >>> x48, x64 = prepare_inputs(np.zeros((1, 48, 48), np.uint8), (48, 64))
        >>> x64.shape
        (1, 1, 64, 64)
    """
    faces = check_faces(faces)
    outs = tuple(np.empty((faces.shape[0], 1, size, size), dtype=np.float32) for size in sizes)
    for i, face in enumerate(faces):
        clean = denoise(face)
        for size, out in zip(sizes, outs):
            # the exact (integer) kernel gives the same pixels on x86_64 and aarch64
            resized = clean if size == FACE_SIZE else cv2.resize(clean, (size, size),
                                                                 interpolation=cv2.INTER_LINEAR_EXACT)
            _standardise_into(out[i, 0], resized)
    return outs


def prepare_faces(faces: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """(N,48,48) uint8 crops -> (N,1,size,size) float32 network input."""
    return prepare_inputs(faces, (size,))[0]
