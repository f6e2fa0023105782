"""The paper's three test conditions, applied to uint8 face crops with a fixed seed.

Each condition is (Gaussian noise sigma in grey levels, salt-and-pepper fraction, illumination
gain), applied in the order gain, Gaussian noise, impulse noise, then clipped to 0..255.

Example::

    >>> import numpy as np
    >>> faces = np.full((1, 48, 48), 128, dtype=np.uint8)
    >>> noisy = perturb(faces, "impulse", seed=0)
    >>> noisy.dtype, (noisy != 128).mean() > 0.5
    (dtype('uint8'), True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Condition(NamedTuple):
    """One test condition: Gaussian sigma (grey levels), salt-and-pepper fraction, gain."""

    sigma: float
    salt_pepper: float
    gain: float


CONDITIONS: dict[str, Condition] = {
    "clean": Condition(0.0, 0.0, 1.0),
    "gaussian": Condition(50.0, 0.01, 1.0),
    "impulse": Condition(25.0, 0.05, 1.0),
    "illumination": Condition(25.0, 0.01, 1.5),
}
DEFAULT_SEED = 2013


def apply_condition(faces: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    x = faces.astype(np.float32) * cond.gain
    if cond.sigma > 0:
        x += rng.normal(0.0, cond.sigma, size=x.shape).astype(np.float32)
    if cond.salt_pepper > 0:
        hit = rng.random(x.shape) < cond.salt_pepper
        salt = rng.random(x.shape) < 0.5
        x[hit & salt] = 255.0
        x[hit & ~salt] = 0.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def perturb(faces: np.ndarray, condition: str, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Return a perturbed copy of ``faces`` under the named condition (see :data:`CONDITIONS`)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: choose from {', '.join(CONDITIONS)}")
    return apply_condition(faces, CONDITIONS[condition], np.random.default_rng(seed))
