"""A listener's mood over time: smoothing, a confidence floor and hysteresis over face readings.

:class:`MoodTracker` takes one :class:`~rescnn_appliance.vision.affect.AffectReading` per face
seen (or a note that a frame had no face) and keeps:

- a moving average of valence, arousal and the 7 class probabilities over the last
  ``window_s`` seconds of readings;
- a confidence floor: a reading whose top class probability is below ``confidence_floor`` is
  counted but not averaged (a blurred or half-turned face says little);
- hysteresis: the *held* mood changes only when the smoothed readings point at another mood
  for ``hold_s`` seconds in a row, so one odd frame (or a few) does not change the music. The
  first mood is taken as soon as there is one, since there is nothing to protect yet;
- presence: when the last face was seen, so the playback policy can act on an empty room.
  With no face the held mood and the last averages stay as they were.

Only domain code is imported here (no device, no CLI).

Example::

    >>> from rescnn_appliance.vision.affect import AffectReading
    >>> tracker = MoodTracker(window_s=4, confidence_floor=0.35, hold_s=6)
    >>> happy = (0, 0, 0, 0.9, 0, 0, 0.1)
    >>> tracker.add(AffectReading(0.0, happy, 0.6, 0.2)).mood
    'happy'
    >>> sad = (0, 0, 0, 0, 0.9, 0, 0.1)
    >>> tracker.add(AffectReading(1.0, sad, -0.6, -0.4)).mood     # one odd frame: no change
    'happy'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rescnn_appliance.mood import nearest_mood
from rescnn_appliance.vision.affect import EMOTIONS, AffectReading

MoodOf = Callable[[float, float], str]


@dataclass(frozen=True)
class MoodState:
    """What the tracker believes at time ``t``.

    ``mood`` is the held mood (None until the first confident reading); ``candidate`` a different
    mood the smoothed readings point at, waiting out the hold time since ``candidate_since``.
    ``valence``/``arousal``/``probs`` are the moving averages (the last ones while nobody is in
    view). ``changed`` is True on the update that changed the held mood. ``face_in_view`` says
    whether the latest frame had a face, ``last_face_t`` when one was last seen.

    Example::

        >>> MoodState(t=3.0).emotion is None
        True
    """

    t: float
    mood: str | None = None
    candidate: str | None = None
    candidate_since: float | None = None
    valence: float = 0.0
    arousal: float = 0.0
    probs: tuple[float, ...] = ()
    n_window: int = 0
    face_in_view: bool = False
    last_face_t: float | None = None
    changed: bool = False
    previous: str | None = None

    @property
    def emotion(self) -> str | None:
        """The class with the highest averaged probability, or None before any reading."""
        if not self.probs:
            return None
        return EMOTIONS[max(range(len(self.probs)), key=self.probs.__getitem__)]

    def absent_for(self, now: float) -> float:
        """Seconds since a face was last seen (infinite when none ever was)."""
        return float("inf") if self.last_face_t is None else max(0.0, now - self.last_face_t)


class MoodTracker:
    """Smooths face readings into a held mood; see the module docstring for the rules.

    ``mood_of(valence, arousal)`` names the mood of a point (default: the prototype moods of
    :func:`rescnn_appliance.mood.nearest_mood`; the appliance passes the library's fitted model).

    Example::

        >>> tracker = MoodTracker(window_s=4.0, confidence_floor=0.35, hold_s=6.0)
        >>> tracker.no_face(0.5).face_in_view
        False
    """

    def __init__(self, window_s: float = 4.0, confidence_floor: float = 0.35, hold_s: float = 6.0,
                 mood_of: MoodOf | None = None) -> None:
        self.window_s = float(window_s)
        self.confidence_floor = float(confidence_floor)
        self.hold_s = float(hold_s)
        self.mood_of: MoodOf = mood_of or nearest_mood
        self._window: deque[AffectReading] = deque()
        # running sums over the window, so a frame costs the same however many readings it holds
        self._sum_va = [0.0, 0.0]
        self._sum_probs: list[float] = []
        self.accepted = 0
        self.rejected = 0
        self._state = MoodState(t=0.0)

    @classmethod
    def from_settings(cls, mood: Mapping[str, Any], mood_of: MoodOf | None = None) -> MoodTracker:
        """Build from ``settings.mood`` (window_s, confidence_floor, hold_s)."""
        return cls(mood["window_s"], mood["confidence_floor"], mood["hold_s"], mood_of)

    @property
    def state(self) -> MoodState:
        return self._state

    def restore(self, mood: str | None, valence: float = 0.0, arousal: float = 0.0) -> None:
        """Start from a mood remembered across a restart (no readings behind it yet)."""
        self._state = MoodState(t=self._state.t, mood=mood, valence=valence, arousal=arousal)

    def add(self, reading: AffectReading) -> MoodState:
        """One face reading at ``reading.t``; returns the new state."""
        t = reading.t
        if reading.confidence >= self.confidence_floor:
            self.accepted += 1
            self._window.append(reading)
            self._add_sums(reading, 1.0)
        else:
            self.rejected += 1
        self._expire(t)
        return self._update(t, face=True)

    def no_face(self, t: float) -> MoodState:
        """A frame at ``t`` had no face: readings age out, the held mood stays."""
        self._expire(t)
        return self._update(t, face=False)

    def _expire(self, t: float) -> None:
        while self._window and self._window[0].t < t - self.window_s:
            self._add_sums(self._window.popleft(), -1.0)
        if not self._window:  # start again from exact zeros: no rounding carried over
            self._sum_va, self._sum_probs = [0.0, 0.0], []

    def _add_sums(self, reading: AffectReading, sign: float) -> None:
        if not self._sum_probs:
            self._sum_probs = [0.0] * len(reading.probs)
        self._sum_va[0] += sign * reading.valence
        self._sum_va[1] += sign * reading.arousal
        self._sum_probs = [s + sign * p for s, p in zip(self._sum_probs, reading.probs)]

    def _update(self, t: float, face: bool) -> MoodState:
        old = self._state
        last_face = t if face else old.last_face_t
        if not self._window:
            # Nothing confident in the window: keep the mood and the last averages.
            self._state = MoodState(
                t=t, mood=old.mood, valence=old.valence, arousal=old.arousal, probs=old.probs,
                n_window=0, face_in_view=face, last_face_t=last_face, previous=old.previous)
            return self._state
        n = len(self._window)
        valence, arousal = self._sum_va[0] / n, self._sum_va[1] / n
        probs = tuple(p / n for p in self._sum_probs)
        pointed = self.mood_of(valence, arousal)
        mood, candidate, since = old.mood, old.candidate, old.candidate_since
        changed, previous = False, old.previous
        if mood is None:
            mood, candidate, since, changed = pointed, None, None, True
        elif pointed == mood:
            candidate, since = None, None
        elif pointed != candidate:
            candidate, since = pointed, t
        if candidate is not None and since is not None and t - since >= self.hold_s:
            previous, mood, candidate, since, changed = mood, candidate, None, None, True
        self._state = MoodState(
            t=t, mood=mood, candidate=candidate, candidate_since=since, valence=valence,
            arousal=arousal, probs=probs, n_window=n, face_in_view=face, last_face_t=last_face,
            changed=changed, previous=previous if changed else old.previous)
        return self._state
