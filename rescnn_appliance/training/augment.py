"""Training augmentation on uint8 face batches, ending in the shared inference preprocessing.

Geometry (rotation, flip, scale/crop, shift) and brightness/contrast jitter, then, for robustness,
random Gaussian noise, salt-and-pepper noise and illumination gain drawn around the paper's test
conditions. The result is rounded back to uint8, as a camera would deliver it, and passed through
:func:`rescnn_appliance.vision.preprocess.prepare_faces`, the exact code the appliance runs.

Example::

    >>> import numpy as np
    >>> aug = FaceAugmenter(seed=0)
    >>> aug(np.zeros((4, 48, 48), np.uint8)).shape
    (4, 1, 48, 48)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from rescnn_appliance.vision.perturb import Condition, apply_condition
from rescnn_appliance.vision.preprocess import prepare_faces


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random transforms; ``noise_p`` is the share of faces given sensor noise, whose
    Gaussian sigma (grey levels) is drawn uniformly from ``sigma_min``..``sigma_max``.

    Example::

        >>> AugmentSettings(noise_p=0.6, sigma_min=15.0, sigma_max=60.0).sigma_min
        15.0
    """

    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08
    flip: bool = True
    brightness: float = 0.25
    contrast: tuple[float, float] = (0.7, 1.3)
    noise_p: float = 0.5
    sigma_min: float = 0.0
    sigma_max: float = 55.0
    salt_pepper_max: float = 0.06
    gain: tuple[float, float] = (0.6, 1.6)


class FaceAugmenter:
    """Callable: (N,48,48) uint8 -> (N,1,size,size) float32 network input, randomly transformed.

    Example::

        >>> FaceAugmenter(size=64)(np.zeros((1, 48, 48), np.uint8)).shape
        (1, 1, 64, 64)
    """

    def __init__(self, settings: AugmentSettings = AugmentSettings(), size: int = 48, seed: int = 0) -> None:
        self.s = settings
        self.size = size
        self.rng = np.random.default_rng(seed)

    def geometry(self, faces: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        n = faces.shape[0]
        s, rng = self.s, rng or self.rng
        angle = np.deg2rad(rng.uniform(-s.rotate_deg, s.rotate_deg, n))
        scale = rng.uniform(*s.scale, n)
        flip = np.where(rng.random(n) < 0.5, -1.0, 1.0) if s.flip else np.ones(n)
        tx, ty = rng.uniform(-s.shift, s.shift, (2, n)) * 2
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        theta = np.stack([np.stack([cos * flip, -sin, tx], 1), np.stack([sin * flip, cos, ty], 1)], 1)
        x = torch.from_numpy(faces).float().unsqueeze(1)
        grid = F.affine_grid(torch.from_numpy(theta).float(), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = x.squeeze(1).numpy()
        # brightness / contrast about the image mean
        mean = x.mean(axis=(1, 2), keepdims=True)
        contrast = rng.uniform(*s.contrast, (n, 1, 1))
        bright = rng.uniform(-s.brightness, s.brightness, (n, 1, 1)) * 128
        x = (x - mean) * contrast + mean + bright
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    def sensor(self, faces: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        s, rng = self.s, rng or self.rng
        out = faces.copy()
        for i in np.flatnonzero(rng.random(len(faces)) < s.noise_p):
            cond = Condition(
                sigma=rng.uniform(s.sigma_min, s.sigma_max),
                salt_pepper=rng.uniform(0, s.salt_pepper_max) if rng.random() < 0.7 else 0.0,
                gain=math.exp(rng.uniform(math.log(s.gain[0]), math.log(s.gain[1]))),
            )
            out[i] = apply_condition(faces[i], cond, rng)
        return out

    def __call__(self, faces: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Augment a batch with ``rng`` (default: the augmenter's own generator); a generator per
        batch makes batches independent of the order, or the thread, they are made in."""
        rng = rng or self.rng
        return prepare_faces(self.sensor(self.geometry(faces, rng), rng), self.size)

    def pair(self, faces: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The same random geometry and jitter, before and after sensor noise: ``(clean, noisy)``,
        for a teacher that sees the clean face while the student learns from the noisy one."""
        rng = rng or self.rng
        shaped = self.geometry(faces, rng)
        return prepare_faces(shaped, self.size), prepare_faces(self.sensor(shaped, rng), self.size)
