"""MoodTracker: what a listener would notice -- one odd face does not change the music."""

from __future__ import annotations

import numpy as np
import pytest

from rescnn_appliance.config import load_settings
from rescnn_appliance.tracking import MoodTracker
from rescnn_appliance.vision.affect import AffectReading

HAPPY = (0.02, 0.0, 0.02, 0.86, 0.02, 0.04, 0.04)
SAD = (0.05, 0.0, 0.08, 0.02, 0.75, 0.0, 0.10)
UNSURE = (0.15, 0.1, 0.15, 0.2, 0.15, 0.1, 0.15)


def happy(t: float) -> AffectReading:
    return AffectReading(t, HAPPY, 0.6, 0.2)


def sad(t: float) -> AffectReading:
    return AffectReading(t, SAD, -0.6, -0.4)


def feed(tracker: MoodTracker, make, start: float, stop: float, step: float = 0.25):
    state = None
    t = start
    while t < stop - 1e-9:
        state = tracker.add(make(t))
        t += step
    return state


def test_first_confident_reading_sets_the_mood() -> None:
    tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=6)
    state = tracker.add(happy(0.0))
    assert state.mood == "happy" and state.changed and state.emotion == "happy"
    assert state.face_in_view and state.last_face_t == 0.0


def test_a_few_odd_frames_do_not_change_the_mood() -> None:
    tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=6)
    feed(tracker, happy, 0, 10)
    state = feed(tracker, sad, 10, 11)   # one second of sad faces
    assert state.mood == "happy"
    state = feed(tracker, happy, 11, 20)
    assert state.mood == "happy" and state.candidate is None


def test_a_new_mood_that_holds_changes_it_after_hold_s() -> None:
    tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=6)
    feed(tracker, happy, 0, 10)
    changed_at = None
    t = 10.0
    while t < 30 and changed_at is None:
        state = tracker.add(sad(t))
        if state.changed:
            changed_at = t
        t += 0.25
    assert state.mood == "sad" and state.previous == "happy"
    # The smoothed point crosses to "sad" within the window, then must hold 6 s.
    assert 10 + 6 <= changed_at <= 10 + 4 + 6


def test_low_confidence_readings_are_not_averaged() -> None:
    tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=0)
    feed(tracker, happy, 0, 2)
    state = feed(tracker, lambda t: AffectReading(t, UNSURE, -0.9, -0.9), 2, 10)
    assert state.mood == "happy"
    assert state.valence == pytest.approx(0.6)  # the last confident averages stay
    assert tracker.rejected == 32


def test_no_face_keeps_mood_and_reports_absence() -> None:
    tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=6)
    feed(tracker, sad, 0, 5)
    state = tracker.no_face(100.0)
    assert state.mood == "sad" and not state.face_in_view
    assert state.n_window == 0 and state.valence == pytest.approx(-0.6)
    assert state.absent_for(100.0) == pytest.approx(100.0 - 4.75)


def test_moving_average_over_window() -> None:
    tracker = MoodTracker(window_s=2, confidence_floor=0.0, hold_s=0)
    tracker.add(AffectReading(0.0, HAPPY, 1.0, 0.0))
    state = tracker.add(AffectReading(1.0, HAPPY, 0.0, 0.5))
    assert (state.valence, state.arousal) == pytest.approx((0.5, 0.25))
    state = tracker.add(AffectReading(3.5, HAPPY, 0.2, 0.1))  # the first two aged out
    assert (state.valence, state.n_window) == pytest.approx((0.2, 1))


def test_averages_stay_exact_over_an_evening_of_frames() -> None:
    """Three hours at 8 frames a second with a face always in view (so the window never empties
    and the running sums are never reset), after one spell with nobody in view: the smoothed
    reading is still the plain mean of the readings in the window."""
    rng = np.random.default_rng(5)
    tracker = MoodTracker(window_s=4, confidence_floor=0.3, hold_s=6)
    kept: list[AffectReading] = []
    for i in range(3 * 3600 * 8):
        t = i / 8
        if 100 <= i < 200:  # nobody in view for 12.5 s: the window empties once
            state = tracker.no_face(t)
            continue
        probs = tuple(rng.dirichlet(np.full(7, 0.3)).tolist())
        reading = AffectReading(t, probs, float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
        state = tracker.add(reading)
        if reading.confidence >= 0.3:
            kept.append(reading)
    window = [r for r in kept if r.t >= t - 4]
    assert state.n_window == len(window) > 0
    assert state.valence == pytest.approx(np.mean([r.valence for r in window]), abs=1e-12)
    assert state.arousal == pytest.approx(np.mean([r.arousal for r in window]), abs=1e-12)
    assert state.probs == pytest.approx(np.mean([r.probs for r in window], axis=0), abs=1e-12)


def test_from_settings_and_mood_model() -> None:
    settings = load_settings(None, {"mood.hold_s": 1.0})
    tracker = MoodTracker.from_settings(settings.mood, mood_of=lambda v, a: "calm" if a < 0 else "energetic")
    assert tracker.hold_s == 1.0
    assert tracker.add(sad(0.0)).mood == "calm"
