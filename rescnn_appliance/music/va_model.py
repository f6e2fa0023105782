"""Valence/arousal of a track from its audio features: a small shipped linear model.

The model is a multinomial logistic regression over the four Russell quadrants (Q1 +V+A,
Q2 -V+A, Q3 -V-A, Q4 +V-A) on standardised features from :mod:`.audio_features`, fitted on
the 4Q audio emotion dataset by ``rescnn_appliance/training/music_va.py`` and stored as plain
JSON in ``rescnn_appliance/data/music_va_model.json`` (card: ``music_va_model.md``).
Valence and arousal in [-1, 1] are the quadrant probabilities folded onto each axis:
``valence = P(Q1) + P(Q4) - P(Q2) - P(Q3)``, ``arousal = P(Q1) + P(Q2) - P(Q3) - P(Q4)``.

Example::

    >>> model = VAModel.load()                       # doctest: +SKIP
    >>> model.predict(extract_features("a.flac"))    # doctest: +SKIP
    (0.41, 0.63)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rescnn_appliance.music.audio_features import FEATURE_NAMES

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "music_va_model.json"
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
VALENCE_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
AROUSAL_SIGN = np.array([1.0, 1.0, -1.0, -1.0])
Z_CLIP = 3.0


class VAModelError(Exception):
    """The model file is missing or does not match this version's features."""


class VAModel:
    """Standardise, then softmax(W x + b) over quadrants, folded to (valence, arousal).

    Example::

        >>> m = VAModel(np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)),
        ...             np.zeros((4, len(FEATURE_NAMES))), np.array([2.0, 0, 0, 0]))
        >>> v, a = m.predict(np.zeros(len(FEATURE_NAMES)))
        >>> v > 0 and a > 0
        True
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.coef = np.asarray(coef, dtype=float)
        self.intercept = np.asarray(intercept, dtype=float)
        self.meta = meta or {}

    def quadrant_probs(self, features: np.ndarray) -> np.ndarray:
        # Clipping keeps a file unlike anything in the fitting data (a test tone, a field
        # recording) from being extrapolated into a confident, arbitrary quadrant.
        x = np.clip((np.atleast_2d(features) - self.mean) / self.scale, -Z_CLIP, Z_CLIP)
        z = x @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> tuple[float, float]:
        p = self.quadrant_probs(features)[0]
        return float(p @ VALENCE_SIGN), float(p @ AROUSAL_SIGN)

    def predict_many(self, features: np.ndarray) -> np.ndarray:
        p = self.quadrant_probs(features)
        return np.stack([p @ VALENCE_SIGN, p @ AROUSAL_SIGN], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "multinomial-logistic-quadrants", "feature_names": list(FEATURE_NAMES),
                "quadrants": list(QUADRANTS), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "meta": self.meta}

    def save(self, path: Path | str = DEFAULT_PATH) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> VAModel:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise VAModelError(f"{path}: audio valence/arousal model not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VAModelError(f"{path}: not valid JSON ({exc})") from None
        if data.get("feature_names") != list(FEATURE_NAMES):
            raise VAModelError(f"{path}: fitted on other features; refit with "
                               "python -m rescnn_appliance.training.music_va")
        return cls(data["mean"], data["scale"], data["coef"], data["intercept"],
                   data.get("meta", {}))
