"""Moods: four named regions of the valence/arousal plane, fitted to the owner's library.

``MoodModel`` runs K-means (k=4, scikit-learn) over the tracks' valence/arousal (both in
[-1, 1]) and names each cluster by matching its centroid to a prototype with the Hungarian
algorithm (``scipy.optimize.linear_sum_assignment``):

=========  ===========================  =============
mood       prototype (valence, arousal)  meaning
=========  ===========================  =============
happy      (0.6, 0.15)                  high V, moderate A
energetic  (0.5, 0.7)                   high V, high A
calm       (0.25, -0.55)                moderate V, low A
sad        (-0.55, -0.35)               low V, low A
=========  ===========================  =============

A refit starts K-means from the previous centroids, so names stay put when a scan adds or
removes a few tracks. A library with fewer than ``MIN_TRACKS`` rated tracks uses the prototypes.

Example::

    >>> model = MoodModel.fit([(0.7, 0.1), (0.6, 0.8), (0.2, -0.6), (-0.6, -0.4)] * 3)
    >>> model.mood_of(0.55, 0.75)
    'energetic'
    >>> nearest_mood(-0.5, -0.5)
    'sad'

(Smoothing a listener's readings over time lives with the vision side, not here.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

MOODS: tuple[str, ...] = ("happy", "energetic", "calm", "sad")
PROTOTYPES = np.array([(0.6, 0.15), (0.5, 0.7), (0.25, -0.55), (-0.55, -0.35)])
MIN_TRACKS = 8


class MoodModel:
    """Four named centroids in the valence/arousal plane; ``mood_of`` picks the nearest.

    Example::

        >>> m = MoodModel.prototypes()
        >>> m.mood_of(0.6, 0.2)
        'happy'
        >>> MoodModel.from_json(m.to_json()).centroids.shape
        (4, 2)
    """

    def __init__(self, centroids: np.ndarray, n_tracks: int = 0) -> None:
        self.centroids = np.asarray(centroids, dtype=float).reshape(len(MOODS), 2)
        self.n_tracks = n_tracks

    @classmethod
    def prototypes(cls) -> MoodModel:
        return cls(PROTOTYPES.copy(), 0)

    @classmethod
    def fit(cls, points: Iterable[Sequence[float]], previous: MoodModel | None = None,
            seed: int = 0) -> MoodModel:
        """K-means over ``points`` (valence, arousal); starts from ``previous`` when given."""
        from scipy.optimize import linear_sum_assignment
        from sklearn.cluster import KMeans

        xy = np.asarray(list(points), dtype=float).reshape(-1, 2)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) < MIN_TRACKS or len(np.unique(xy, axis=0)) < len(MOODS):
            return cls(PROTOTYPES.copy(), len(xy))
        init = previous.centroids if previous is not None else PROTOTYPES
        km = KMeans(n_clusters=len(MOODS), init=init, n_init=1, random_state=seed).fit(xy)
        centers = km.cluster_centers_
        cost = ((centers[:, None, :] - PROTOTYPES[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        named = np.empty_like(centers)
        named[cols] = centers[rows]
        return cls(named, len(xy))

    def mood_index(self, valence: np.ndarray | float, arousal: np.ndarray | float) -> np.ndarray:
        v = np.asarray(valence, dtype=float)
        a = np.asarray(arousal, dtype=float)
        d = (v[..., None] - self.centroids[:, 0]) ** 2 + (a[..., None] - self.centroids[:, 1]) ** 2
        return np.argmin(d, axis=-1)

    def mood_of(self, valence: float, arousal: float) -> str:
        return MOODS[int(self.mood_index(valence, arousal))]

    def to_json(self) -> str:
        return json.dumps({"moods": {m: [round(float(c), 6) for c in self.centroids[i]]
                                     for i, m in enumerate(MOODS)},
                           "n_tracks": self.n_tracks})

    @classmethod
    def from_json(cls, text: str) -> MoodModel:
        data = json.loads(text)
        return cls(np.array([data["moods"][m] for m in MOODS]), int(data.get("n_tracks", 0)))

    def __repr__(self) -> str:
        pts = ", ".join(f"{m}=({c[0]:+.2f},{c[1]:+.2f})" for m, c in zip(MOODS, self.centroids))
        return f"MoodModel({pts}, n_tracks={self.n_tracks})"


def nearest_mood(valence: float, arousal: float, model: MoodModel | None = None) -> str:
    """The mood whose centroid (of ``model``, else the prototypes) is nearest a listener's VA."""
    return (model or MoodModel.prototypes()).mood_of(valence, arousal)
