"""The playback policy: when to start the next track, when to follow a new mood, when to pause.

:class:`PlaybackPolicy` knows nothing of VLC or the library; the appliance tells it what
happened (a track started or ended, the mood tracker's state, the time) and does what it answers.

The rules:

- a track that ends (or fails, or is skipped) is followed by the next one at once;
- the *target mood* (the mood tracks are chosen for) follows the tracker's held mood, but changes
  at most once per ``cooldown_s``; a change waiting out the cooldown is applied when it is over;
- when the target changes while a track plays, the new mood takes over with the next track, or,
  with ``change_mid_track``, the current track fades out now;
- when nobody has been seen for ``absent_after_s``, ``absent_action = "keep"`` keeps playing for
  the last mood, ``"pause"`` pauses until a face is back.

Stepping toward an uplift goal is the recommender's job (it picks the target valence/arousal).

Example::

    >>> policy = PlaybackPolicy(change_mid_track=False, cooldown_s=60, absent_after_s=300,
    ...                         absent_action="pause")
    >>> policy.track_started(now=0.0, mood="calm")
    >>> policy.on_mood("happy", face_seen_t=10.0, now=10.0).kind     # waits for the track end
    'none'
    >>> policy.target_mood
    'happy'
    >>> policy.on_tick(face_seen_t=10.0, now=400.0).kind             # nobody for 390 s
    'pause'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ActionKind = Literal["none", "play_next", "fade_next", "pause", "resume"]


@dataclass(frozen=True)
class Action:
    """What the appliance should do now, and why (shown in logs and ``status``).

    Example::

        >>> Action("play_next", "track ended").kind
        'play_next'
    """

    kind: ActionKind
    reason: str = ""


NOTHING = Action("none")


class PlaybackPolicy:
    """Decides track changes from track events, mood changes and presence; see module docstring.

    Example::

        >>> p = PlaybackPolicy(change_mid_track=True, cooldown_s=0, absent_after_s=300)
        >>> p.track_started(now=0.0, mood="calm")
        >>> p.on_mood("sad", face_seen_t=5.0, now=5.0)
        Action(kind='fade_next', reason='mood calm -> sad')
    """

    def __init__(self, change_mid_track: bool = False, cooldown_s: float = 60.0,
                 absent_after_s: float = 300.0, absent_action: str = "keep") -> None:
        if absent_action not in ("keep", "pause"):
            raise ValueError(f"playback.absent_action must be keep or pause, got {absent_action!r}")
        self.change_mid_track = change_mid_track
        self.cooldown_s = float(cooldown_s)
        self.absent_after_s = float(absent_after_s)
        self.absent_action = absent_action
        self.target_mood: str | None = None
        self.pending_mood: str | None = None
        self.playing_mood: str | None = None  # the mood the current track was chosen for
        self.paused_for_absence = False
        self._last_change_t = float("-inf")
        self._fading = False

    @classmethod
    def from_settings(cls, playback: Mapping[str, Any]) -> PlaybackPolicy:
        """Build from ``settings.playback``."""
        return cls(playback["change_mid_track"], playback["cooldown_s"],
                   playback["absent_after_s"], playback["absent_action"])

    def track_started(self, now: float, mood: str | None) -> None:
        """A track chosen for ``mood`` started playing."""
        self.playing_mood = mood
        self._fading = False
        if self.target_mood is None:
            self.target_mood = mood

    def on_track_end(self, now: float, how: str = "ended") -> Action:
        """The current track ended, failed or was skipped: play the next unless paused."""
        self._fading = False
        self.playing_mood = None
        if self.paused_for_absence:
            return NOTHING
        return Action("play_next", f"track {how}")

    def on_mood(self, mood: str | None, face_seen_t: float | None, now: float) -> Action:
        """The tracker's held mood is ``mood`` at ``now``; may change the target mood."""
        action = self._presence(face_seen_t, now)
        if action.kind != "none" or mood is None:
            return action
        if mood == self.target_mood:
            self.pending_mood = None
            return NOTHING
        if self.target_mood is not None and now - self._last_change_t < self.cooldown_s:
            self.pending_mood = mood  # applied by on_tick once the cooldown is over
            return NOTHING
        return self._change_target(mood, now)

    def on_tick(self, face_seen_t: float | None, now: float) -> Action:
        """Called about once a second: absence, and a mood change that waited out the cooldown."""
        action = self._presence(face_seen_t, now)
        if action.kind != "none":
            return action
        if self.pending_mood is not None and now - self._last_change_t >= self.cooldown_s:
            mood, self.pending_mood = self.pending_mood, None
            if mood != self.target_mood:
                return self._change_target(mood, now)
        return NOTHING

    def cooldown_left(self, now: float) -> float:
        return max(0.0, self._last_change_t + self.cooldown_s - now)

    def _change_target(self, mood: str, now: float) -> Action:
        old, self.target_mood, self.pending_mood = self.target_mood, mood, None
        if old is None:
            return NOTHING  # the first mood: the track playing now was not chosen against it
        self._last_change_t = now
        reason = f"mood {old} -> {mood}"
        if self.change_mid_track and self.playing_mood not in (None, mood) and not self._fading:
            self._fading = True
            return Action("fade_next", reason)
        return NOTHING

    def _presence(self, face_seen_t: float | None, now: float) -> Action:
        if self.absent_action != "pause":
            return NOTHING
        absent = face_seen_t is None or now - face_seen_t >= self.absent_after_s
        if absent and not self.paused_for_absence and face_seen_t is not None:
            self.paused_for_absence = True
            return Action("pause", f"nobody seen for {now - face_seen_t:.0f} s")
        if not absent and self.paused_for_absence:
            self.paused_for_absence = False
            return Action("resume", "a face is back")
        return NOTHING
