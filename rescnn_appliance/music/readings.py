"""How much of a listener's emotion the database keeps (``settings.privacy``).

Three levels for ``privacy.store_readings``:

======  ==============================================================================
off     no valence, arousal, emotion class or mood is stored: feedback rows carry none,
        there are no recent readings and no remembered mood
coarse  the mood only (happy, energetic, calm or sad); the default
full    valence, arousal, the emotion class and the mood
======  ==============================================================================

and ``privacy.retention_days``: readings older than that are erased (the like, skip or
complete itself stays, so the music still learns; only the emotion attached to it goes).
Readings live in three places, all handled here: the ``valence``/``arousal``/``mood`` columns
of ``feedback``, and the ``recent_readings`` and ``mood`` entries of ``app_state``.

Example::

    >>> redact("coarse", 0.4, -0.2, "calm")
    (None, None, 'calm')
    >>> redact_entry("coarse", {"at": "2026-01-01T10:00:00", "mood": "calm", "valence": 0.4})
    {'at': '2026-01-01T10:00:00', 'mood': 'calm'}
    >>> redact_entry("off", {"at": "2026-01-01T10:00:00", "mood": "calm"}) is None
    True
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

LEVELS: tuple[str, ...] = ("off", "coarse", "full")
READINGS_KEY = "recent_readings"   # app_state: the last readings, for `status`
MOOD_KEY = "mood"                  # app_state: the listener's mood, resumed after a restart
# What an app_state entry may keep at each level (besides these, nothing).
_ENTRY_FIELDS = {"coarse": ("at", "user", "mood", "target"),
                 "full": ("at", "user", "mood", "target", "emotion", "valence", "arousal")}


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"privacy.store_readings {level!r}: must be one of {', '.join(LEVELS)}")
    return level


def redact(level: str, valence: float | None, arousal: float | None,
           mood: str | None) -> tuple[float | None, float | None, str | None]:
    """The (valence, arousal, mood) that ``level`` lets a feedback row keep."""
    if level == "full":
        return valence, arousal, mood
    if level == "coarse":
        return None, None, mood
    return None, None, None


def redact_entry(level: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a recent-reading or mood entry that ``level`` keeps; None: nothing."""
    if level == "off" or not isinstance(entry, dict) or not entry.get("mood"):
        return None
    return {k: v for k, v in entry.items() if k in _ENTRY_FIELDS[level]}


def cutoff(retention_days: float, now: datetime) -> datetime:
    """Readings taken before this are erased (0 or less: every reading at the next prune)."""
    return now - timedelta(days=max(0.0, float(retention_days)))


def is_older(entry: dict[str, Any], before: datetime) -> bool:
    """True when ``entry['at']`` (ISO text, UTC) is before ``before``; an unreadable or
    missing time counts as old, so it is erased rather than kept for ever."""
    try:
        return datetime.fromisoformat(str(entry["at"])) < before
    except (KeyError, TypeError, ValueError):
        return True
