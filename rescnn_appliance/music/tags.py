"""Tags of an audio file through mutagen: title, artist, album, genre, duration, valence/arousal.

Genre is ID3 ``TCON`` (ID3v1-style numbers such as ``(17)`` read as their names), Vorbis
``GENRE`` or MP4 ``©gen``; several genres are kept joined by ``"; "``.

Valence and arousal tags, each a number in [-1, 1] (negative/positive valence, calm/excited):

- ID3 (mp3): user text frames ``TXXX:VALENCE`` and ``TXXX:AROUSAL``
  (``mid3v2 --TXXX "VALENCE:0.4" --TXXX "AROUSAL:-0.2" song.mp3``)
- Vorbis comments (flac, ogg, opus): ``VALENCE=0.4`` and ``AROUSAL=-0.2``
  (``metaflac --set-tag=VALENCE=0.4 song.flac``)
- MP4 (m4a): freeform atoms ``----:com.apple.iTunes:VALENCE`` / ``...:AROUSAL``

A tag that is not a number in [-1, 1] is ignored and reported in ``TrackTags.note``.

Example::

    >>> tags = read_tags("song.flac")        # doctest: +SKIP
    >>> tags.artist, tags.valence            # doctest: +SKIP
    ('Nina Simone', -0.3)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@functools.cache
def _mutagen() -> ModuleType:
    """mutagen, with the VALENCE/AROUSAL keys registered; imported on first use so that the
    appliance's start-up (which only needs :class:`TrackTags`) does not pay for it."""
    import mutagen
    from mutagen.easyid3 import EasyID3
    from mutagen.easymp4 import EasyMP4Tags

    for key in ("VALENCE", "AROUSAL"):
        EasyID3.RegisterTXXXKey(key.lower(), key)
        EasyMP4Tags.RegisterFreeformKey(key.lower(), key)
    return mutagen


@dataclass
class TrackTags:
    """What the tags say; any field may be missing."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    duration_s: float | None = None
    valence: float | None = None
    arousal: float | None = None
    note: str | None = None


def _first(tags, key: str) -> str | None:
    try:
        value = tags.get(key)
    except (KeyError, ValueError):
        return None
    if not value:
        return None
    text = str(value[0] if isinstance(value, list) else value).strip()
    return text or None


def _all(tags, key: str) -> str | None:
    try:
        values = tags.get(key) or []
    except (KeyError, ValueError):
        return None
    texts = [t for t in (str(v).strip() for v in values) if t]
    return "; ".join(dict.fromkeys(texts)) or None


def _unit(text: str | None) -> float | None:
    if text is None:
        return None
    value = float(text)  # ValueError for junk
    if not -1.0 <= value <= 1.0:
        raise ValueError("outside [-1, 1]")
    return value


def read_tags(path: str | Path) -> TrackTags:
    """Read tags with mutagen; raises ``mutagen.MutagenError`` or ``OSError`` on unreadable files."""
    audio = _mutagen().File(str(path), easy=True)
    out = TrackTags()
    if audio is None:
        return out
    info = getattr(audio, "info", None)
    length = getattr(info, "length", None)
    if length and length > 0:
        out.duration_s = float(length)
    tags = audio.tags
    if tags is None:
        return out
    out.title = _first(tags, "title")
    out.artist = _first(tags, "artist")
    out.album = _first(tags, "album")
    out.genre = _all(tags, "genre")
    raw_v, raw_a = _first(tags, "valence"), _first(tags, "arousal")
    try:
        v, a = _unit(raw_v), _unit(raw_a)
        if v is not None and a is not None:
            out.valence, out.arousal = v, a
        elif v is not None or a is not None:
            out.note = "ignored VALENCE/AROUSAL tags: only one of the two is set"
    except ValueError:
        out.note = f"ignored tags VALENCE={raw_v!r} AROUSAL={raw_a!r}: not numbers in [-1, 1]"
    return out
