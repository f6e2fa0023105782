"""K-means moods: named by prototype, stable when the library changes, stored in the DB."""

from __future__ import annotations

import numpy as np

from rescnn_appliance.mood import MOODS, PROTOTYPES, MoodModel, nearest_mood


def _library(rng: np.random.Generator, n: int = 50) -> np.ndarray:
    centres = PROTOTYPES + rng.normal(0, 0.05, PROTOTYPES.shape)
    pts = np.concatenate([c + rng.normal(0, 0.12, (n, 2)) for c in centres])
    return np.clip(pts, -1, 1)


def test_clusters_are_named_after_the_nearest_prototype() -> None:
    model = MoodModel.fit(_library(np.random.default_rng(1)))
    assert model.mood_of(0.65, 0.15) == "happy"
    assert model.mood_of(0.5, 0.8) == "energetic"
    assert model.mood_of(0.2, -0.6) == "calm"
    assert model.mood_of(-0.6, -0.4) == "sad"
    # Hungarian matching: every mood has exactly one centroid
    assert sorted(set(model.mood_index(*PROTOTYPES.T).tolist())) == [0, 1, 2, 3]


def test_names_stay_put_when_tracks_are_added_and_removed() -> None:
    rng = np.random.default_rng(2)
    lib = _library(rng)
    before = MoodModel.fit(lib)
    changed = np.concatenate([lib[10:], _library(rng, 5)])  # drop 10, add 20
    after = MoodModel.fit(changed, previous=before)
    assert np.abs(after.centroids - before.centroids).max() < 0.15
    assert (before.mood_index(*lib.T) == after.mood_index(*lib.T)).mean() > 0.95


def test_small_or_degenerate_library_falls_back_to_prototypes() -> None:
    assert np.allclose(MoodModel.fit([(0.1, 0.1)] * 3).centroids, PROTOTYPES)
    assert np.allclose(MoodModel.fit([(0.5, 0.5)] * 40).centroids, PROTOTYPES)


def test_round_trips_through_json() -> None:
    model = MoodModel.fit(_library(np.random.default_rng(3)))
    again = MoodModel.from_json(model.to_json())
    assert np.allclose(again.centroids, model.centroids, atol=1e-5)
    assert again.n_tracks == model.n_tracks


def test_listener_maps_to_nearest_mood() -> None:
    assert nearest_mood(0.8, 0.9) == "energetic"
    assert nearest_mood(-0.9, -0.9) == "sad"
    assert nearest_mood(0.3, -0.9) == "calm"
    assert set(MOODS) == {"happy", "energetic", "calm", "sad"}
