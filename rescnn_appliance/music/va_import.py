"""Import track valence/arousal from a CSV (``rescnn-appliance library import-va FILE.csv``).

The first row names the columns (any case, any order, other columns ignored):

- which track: ``path`` (or ``file``, ``location``), and/or ``artist`` (``artist_name``,
  ``artists``) with ``title`` (``track_name``, ``name``, ``track``);
- its mood, either ``valence`` and ``arousal`` on -1..1, or ``valence`` and ``energy`` on 0..1
  as a streaming-service export gives them (mapped to -1..1 as ``2x - 1``).

Imported values beat the audio estimate and lose to tags. Good rows are kept even when some rows
are bad; each bad row is reported once as ``FILE:LINE: what is wrong``.

Example::

    path,valence,arousal
    /music/a.flac,0.4,-0.2

    artist,track_name,valence,energy
    Nina Simone,Feeling Good,0.31,0.42
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete

from rescnn_appliance.music.db import ImportedVA
from rescnn_appliance.music.scan import key

if TYPE_CHECKING:
    from rescnn_appliance.music.library import Library

PATH_COLS = ("path", "file", "filename", "location")
ARTIST_COLS = ("artist", "artist_name", "artists", "artist_names", "artist name(s)")
TITLE_COLS = ("title", "track_name", "name", "track", "track name")


class VAImportError(ValueError):
    """The CSV as a whole cannot be used (missing file, no header, no valence column)."""


@dataclass
class ImportReport:
    """Rows imported and one message per bad row."""

    imported: int = 0
    errors: list[str] = field(default_factory=list)


def _pick(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((header[n] for n in names if n in header), None)


def _number(text: str, lo: float, hi: float, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not lo <= value <= hi:
        raise ValueError(f"{what} {value} is outside {lo:g}..{hi:g}")
    return value


def import_csv(lib: Library, path: Path) -> ImportReport:
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise VAImportError(f"{path}: cannot open ({exc.strerror})") from None
    report = ImportReport()
    with fh:
        reader = csv.DictReader(fh)
        try:
            fields = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise VAImportError(f"{path}:1: cannot read the header ({exc})") from None
        header = {f.strip().lower(): f for f in fields if f}
        col_path = _pick(header, PATH_COLS)
        col_artist, col_title = _pick(header, ARTIST_COLS), _pick(header, TITLE_COLS)
        col_v = header.get("valence")
        col_a, spotify = header.get("arousal"), False
        if col_a is None and "energy" in header:
            col_a, spotify = header["energy"], True
        if col_v is None or col_a is None:
            raise VAImportError(f"{path}:1: need a valence column and an arousal (or energy) "
                               f"column, found {', '.join(fields) or 'none'}")
        if col_path is None and not (col_artist and col_title):
            raise VAImportError(f"{path}:1: need a path column, or artist and title columns")
        rows: list[ImportedVA] = []
        lo = 0.0 if spotify else -1.0
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                report.errors.append(f"{path}:{reader.line_num}: unreadable row ({exc})")
                continue
            line = reader.line_num
            try:
                v = _number(rec.get(col_v), lo, 1.0, "valence")
                a = _number(rec.get(col_a), lo, 1.0, "energy" if spotify else "arousal")
                if spotify:
                    v, a = 2 * v - 1, 2 * a - 1
                track_path = (rec.get(col_path) or "").strip() if col_path else ""
                artist = key(rec.get(col_artist)) if col_artist else ""
                title = key(rec.get(col_title)) if col_title else ""
                if not track_path and not (artist and title):
                    raise ValueError("no path and no artist/title to match a track")
                if track_path:
                    try:
                        track_path = str(Path(track_path).expanduser().absolute())
                    except RuntimeError:  # "~someone/..." for a user that does not exist
                        raise ValueError(f"path {track_path!r}: unknown home directory") from None
            except ValueError as exc:
                report.errors.append(f"{path}:{line}: {exc}")
                continue
            rows.append(ImportedVA(path=track_path or None, artist_key=artist or None,
                                   title_key=title or None, valence=v, arousal=a,
                                   source=f"{path.name}:{line}"))
    with lib.session() as s:
        for r in rows:
            if r.path:
                s.execute(delete(ImportedVA).where(ImportedVA.path == r.path))
            elif r.artist_key:
                s.execute(delete(ImportedVA).where(ImportedVA.artist_key == r.artist_key,
                                                   ImportedVA.title_key == r.title_key))
        s.add_all(rows)
    report.imported = len(rows)
    return report
