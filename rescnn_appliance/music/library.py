"""The music library: one SQLite file with tracks, users, feedback, plays and resume state.

This is the API the appliance calls (all from one thread, each call a short transaction that
commits at once; a write that finds the database locked raises
:class:`~rescnn_appliance.music.db.DatabaseBusy` so the caller can queue and retry)::

    lib = Library.open(db_path, store_readings="coarse")   # migrates (copy aside first), WAL, FK
    report = lib.scan([Path("~/Music")], progress=True)   # -> ScanReport
    lib.add_user("ana"); lib.users(); lib.remove_user("ana")   # remove deletes their history
    lib.set_state("volume", 70); lib.get_state("volume")       # JSON values
    lib.record_feedback("ana", track_id, "like", valence=0.3, arousal=0.1, mood="happy")
    lib.record_play("ana", track_id, started_at=None, ended_how="complete")
    lib.mark_error(track_id, "playback: not decodable")   # out of play until a rescan
    lib.apply_reading_policy(retention_days=30)  # erase readings the privacy settings forbid
    lib.mood_model()                             # the fitted MoodModel
    lib.import_va(Path("export.csv"))            # -> ImportReport (see va_import)

Example::

    >>> lib = Library.open(tmp_path / "lib.sqlite")   # doctest: +SKIP
    >>> lib.add_user("ana")                           # doctest: +SKIP
    >>> lib.users()                                   # doctest: +SKIP
    ['ana']
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, cast, delete, func, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from rescnn_appliance.mood import MoodModel
from rescnn_appliance.music import readings
from rescnn_appliance.music import scan as scanning
from rescnn_appliance.music.db import (
    FEEDBACK_KINDS,
    AppState,
    DatabaseBusy,
    Feedback,
    ImportedVA,
    MoodModelRow,
    Play,
    Track,
    User,
    is_busy,
    make_engine,
    open_engine,
    utcnow,
)

log = logging.getLogger(__name__)
BATCH_FILES = 25
BATCH_SECONDS = 2.0
FeedbackListener = Callable[[int, int, str, str | None], None]
REVISION_KEY = "tracks_revision"  # app_state row bumped with every change the recommender loads


class UnknownUser(LookupError):
    """No user of that name; the message names it."""


class UnknownTrack(LookupError):
    """No track with that id or path."""


class Library:
    """Tracks, users, feedback and state in one SQLite file (see the module docstring)."""

    def __init__(self, engine, path: Path, store_readings: str = "coarse") -> None:
        self.engine = engine
        self.path = path
        self.store_readings = readings.check_level(store_readings)  # see .readings
        self._listeners: list[FeedbackListener] = []

    @classmethod
    def open(cls, db_path: Path | str, store_readings: str = "coarse",
             busy_timeout_s: float | None = None) -> Library:
        """``store_readings`` (off | coarse | full) limits the listener's valence, arousal
        and mood that :meth:`record_feedback` keeps; see :mod:`.readings`.

        ``busy_timeout_s``: how long a write waits for another process's lock before
        :class:`DatabaseBusy` (default ``db.BUSY_TIMEOUT_S``, 5 s). An event loop that queues
        and retries passes a short one so it never stalls; the migration on opening always
        waits the default."""
        path = Path(db_path).expanduser()
        engine = open_engine(path)
        if busy_timeout_s is not None:
            engine.dispose()
            engine = make_engine(path, busy_timeout_s)
        return cls(engine, path, store_readings)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A short transaction; commits on success; a lock becomes DatabaseBusy."""
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                yield s
                s.commit()
        except OperationalError as exc:
            if is_busy(exc):
                raise DatabaseBusy(f"{self.path}: database is locked, try again") from None
            raise

    @property
    def tracks_revision(self) -> int:
        """A counter in the database, bumped in the same transaction as every change to
        tracks, moods or users by any :class:`Library` on this file (a scan on another thread
        or process, ``users remove`` from the command line); readers reload when it moves."""
        with self.session() as s:
            raw = s.scalar(select(AppState.value).where(AppState.key == REVISION_KEY))
        return int(raw) if raw else 0

    @staticmethod
    def _bump_revision(s: Session) -> None:
        stmt = insert(AppState).values(key=REVISION_KEY, value="1")
        s.execute(stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": cast(AppState.value, Integer) + 1}))

    # --- users ------------------------------------------------------------------------

    def add_user(self, name: str) -> int:
        name = name.strip()
        if not name or len(name) > 64:
            raise ValueError(f"user name {name!r}: must be 1 to 64 characters")
        try:
            with self.session() as s:
                user = User(name=name)
                s.add(user)
                s.flush()
                return user.id
        except IntegrityError:
            raise ValueError(f"user {name!r} already exists") from None

    def users(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(User.name).order_by(User.id)))

    def user_id(self, name: str) -> int:
        with self.session() as s:
            uid = s.scalar(select(User.id).where(User.name == name))
        if uid is None:
            raise UnknownUser(f"no user named {name!r}")
        return uid

    def remove_user(self, name: str) -> None:
        """Delete a listener with their history: feedback, plays (by the foreign keys'
        cascade), their recent readings, and the resume point of a track chosen for them."""
        uid = self.user_id(name)
        with self.session() as s:
            s.execute(delete(User).where(User.id == uid))  # FK cascade deletes the history
            self._bump_revision(s)
        if self.get_state("active_user") == name:
            self.set_state("active_user", None)
        kept = self.get_state(readings.READINGS_KEY)
        if isinstance(kept, list):
            self.set_state(readings.READINGS_KEY,
                           [r for r in kept if not (isinstance(r, dict) and r.get("user") == name)])
        last = self.get_state("last_track")
        if isinstance(last, dict) and last.get("user") == name:
            self.set_state("last_track", None)

    # --- resume state -------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        with self.session() as s:
            raw = s.scalar(select(AppState.value).where(AppState.key == key))
        return default if raw is None else json.loads(raw)

    def set_state(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        with self.session() as s:
            s.execute(insert(AppState).values(key=key, value=text)
                      .on_conflict_do_update(index_elements=["key"], set_={"value": text}))

    # --- feedback and plays -------------------------------------------------------------

    def add_listener(self, fn: FeedbackListener) -> None:
        """``fn(user_id, track_id, kind, mood)`` runs after each recorded feedback."""
        self._listeners.append(fn)

    def record_feedback(self, user: str, track_id: int, kind: str,
                        valence: float | None = None, arousal: float | None = None,
                        mood: str | None = None, at: datetime | None = None) -> None:
        """One press; ``at`` is when it happened (now when not given: a queued press keeps its own)."""
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"feedback kind {kind!r}: must be one of {', '.join(FEEDBACK_KINDS)}")
        uid = self.user_id(user)
        valence, arousal, mood = readings.redact(self.store_readings, valence, arousal, mood)
        with self.session() as s:
            if s.get(Track, track_id) is None:
                raise UnknownTrack(f"no track with id {track_id}")
            s.add(Feedback(user_id=uid, track_id=track_id, kind=kind, valence=valence,
                           arousal=arousal, mood=mood, at=at or utcnow()))
        for fn in self._listeners:
            fn(uid, track_id, kind, mood)

    def record_play(self, user: str | None, track_id: int, started_at: datetime | None = None,
                    ended_how: str | None = None) -> None:
        uid = self.user_id(user) if user else None
        with self.session() as s:
            s.add(Play(user_id=uid, track_id=track_id, started_at=started_at or utcnow(),
                       ended_how=ended_how))

    def apply_reading_policy(self, retention_days: float,
                             now: datetime | None = None) -> dict[str, int]:
        """Erase the emotion readings that ``store_readings`` or ``retention_days`` forbid:
        from feedback rows (the row itself stays), recent readings and the remembered mood.

        Run on start (so lowering the level erases what a higher one kept) and daily.
        Returns the feedback row updates made and the app-state entries erased or cut down.
        """
        level = self.store_readings
        before = readings.cutoff(retention_days, now or utcnow())
        has_any = (Feedback.valence.is_not(None) | Feedback.arousal.is_not(None)
                   | Feedback.mood.is_not(None))
        with self.session() as s:
            n_old = s.execute(update(Feedback).where(Feedback.at < before, has_any).values(
                valence=None, arousal=None, mood=None)).rowcount
            if level == "off":
                n_level = s.execute(update(Feedback).where(has_any).values(
                    valence=None, arousal=None, mood=None)).rowcount
            elif level == "coarse":
                n_level = s.execute(update(Feedback).where(
                    Feedback.valence.is_not(None) | Feedback.arousal.is_not(None)).values(
                    valence=None, arousal=None)).rowcount
            else:
                n_level = 0
        n_state = 0
        kept = self.get_state(readings.READINGS_KEY)
        if kept is not None:
            entries = kept if isinstance(kept, list) else []
            fresh = [e for e in (readings.redact_entry(level, r) for r in entries
                                 if not readings.is_older(r, before)) if e]
            if fresh != kept:
                n_state += len(entries) - len(fresh) or 1
                self.set_state(readings.READINGS_KEY, fresh)
        mood = self.get_state(readings.MOOD_KEY)
        if mood is not None:
            fresh_mood = None if readings.is_older(mood, before) else \
                readings.redact_entry(level, mood)
            if fresh_mood != mood:
                n_state += 1
                self.set_state(readings.MOOD_KEY, fresh_mood)
        return {"feedback": n_old + n_level, "state": n_state}

    # --- tracks -------------------------------------------------------------------------

    def tracks(self, status: str | None = None) -> list[Track]:
        with self.session() as s:
            q = select(Track).order_by(Track.artist, Track.album, Track.title, Track.path)
            if status:
                q = q.where(Track.status == status)
            return list(s.scalars(q))

    def track(self, ref: int | str) -> Track:
        """A track by id, by path, or by a unique case-insensitive piece of path or title."""
        with self.session() as s:
            if isinstance(ref, int) or str(ref).isdigit():
                found = s.get(Track, int(ref))
                if found:
                    return found
            found = s.scalar(select(Track).where(Track.path == str(ref)))
            if found:
                return found
            like = f"%{str(ref).lower()}%"
            hits = list(s.scalars(select(Track).where(
                func.lower(Track.path).like(like) | func.lower(Track.title).like(like)).limit(2)))
        if len(hits) == 1:
            return hits[0]
        raise UnknownTrack(f"no single track matches {ref!r}" + (" (several do)" if hits else ""))

    def mark_error(self, track_id: int, why: str) -> None:
        """Take a track out of play: status 'error' with ``why`` as its error (a rescan that
        finds the file changed tries it again). The recommender stops choosing it at once."""
        with self.session() as s:
            track = s.get(Track, track_id)
            if track is None:
                raise UnknownTrack(f"no track with id {track_id}")
            track.status, track.error = "error", why
            self._bump_revision(s)

    def stats(self) -> dict[str, Any]:
        with self.session() as s:
            def count(col, *where) -> dict[str, int]:
                rows = s.execute(select(col, func.count()).where(*where).group_by(col))
                return {str(k): n for k, n in rows}
            return {
                "tracks": s.scalar(select(func.count()).select_from(Track)),
                "by_status": count(Track.status),
                "by_mood": count(Track.mood, Track.status == "ok"),
                "by_va_source": count(Track.va_source, Track.status == "ok"),
                "errors": [(p, e) for p, e in s.execute(
                    select(Track.path, Track.error).where(Track.status == "error"))],
                "users": s.scalar(select(func.count()).select_from(User)),
                "feedback": s.scalar(select(func.count()).select_from(Feedback)),
                "plays": s.scalar(select(func.count()).select_from(Play)),
            }

    # --- moods --------------------------------------------------------------------------

    def mood_model(self) -> MoodModel:
        with self.session() as s:
            raw = s.scalar(select(MoodModelRow.centroids_json).order_by(MoodModelRow.id.desc()))
        return MoodModel.from_json(raw) if raw else MoodModel.prototypes()

    def refit_moods(self) -> MoodModel:
        """Refit K-means on the usable tracks (from the previous centroids) and relabel them."""
        with self.session() as s:
            rows = s.execute(select(Track.id, Track.valence, Track.arousal).where(
                Track.status == "ok", Track.valence.is_not(None))).all()
        model = MoodModel.fit([(v, a) for _, v, a in rows], previous=self.mood_model())
        moods = model.mood_index([r[1] for r in rows], [r[2] for r in rows]) if rows else []
        from rescnn_appliance.mood import MOODS

        with self.session() as s:
            s.add(MoodModelRow(n_tracks=len(rows), centroids_json=model.to_json()))
            if rows:
                s.execute(update(Track), [{"id": r[0], "mood": MOODS[int(m)]}
                                          for r, m in zip(rows, moods)])
            self._bump_revision(s)
        return model

    # --- scan and import ----------------------------------------------------------------

    def import_va(self, csv_path: Path | str):
        """Import valence/arousal rows from a CSV; see :mod:`.va_import`. Returns ImportReport."""
        from rescnn_appliance.music.va_import import import_csv

        report = import_csv(self, Path(csv_path))
        self.apply_imported_va()
        return report

    def apply_imported_va(self) -> int:
        """Give tracks without tag VA the imported values that match them; returns how many."""
        with self.session() as s:
            by_path = {r.path: r for r in s.scalars(select(ImportedVA).where(
                ImportedVA.path.is_not(None)))}
            by_key = {(r.artist_key, r.title_key): r for r in s.scalars(select(ImportedVA).where(
                ImportedVA.artist_key.is_not(None)))}
            changed = 0
            for t in s.scalars(select(Track).where(Track.va_source.is_distinct_from("tags"))):
                hit = by_path.get(t.path) or by_key.get((scanning.key(t.artist),
                                                         scanning.key(t.title)))
                if hit and (t.valence, t.arousal, t.va_source) != (hit.valence, hit.arousal, "csv"):
                    t.valence, t.arousal, t.va_source = hit.valence, hit.arousal, "csv"
                    if t.status == "error" and t.error and "decode" in t.error:
                        t.status, t.error = "ok", None
                    changed += 1
        if changed:
            self.refit_moods()
        return changed

    def scan(self, folders: Sequence[Path | str], progress: bool = True,
             workers: int | None = None) -> scanning.ScanReport:
        """Scan ``folders`` recursively (see :mod:`.scan`) and refit the moods.

        ``workers`` processes analyse the audio (default: one per core). When the calling
        process already runs other threads the workers are started by forkserver, which
        re-imports ``__main__``: call this from a program with an ``if __name__ == "__main__"``
        guard (console scripts have one).
        """
        from tqdm import tqdm

        from rescnn_appliance.music.va_model import VAModel

        VAModel.load()  # a missing or stale model is one clear error, not one per track
        t0 = time.monotonic()
        report = scanning.ScanReport()
        roots = [Path(f).expanduser().absolute() for f in folders]
        bad: dict[str, str] = {}
        found = list(scanning.walk_audio(roots, report.errors, bad))
        report.found = len(found) + len(bad)
        seen = {p for p, _, _ in found} | set(bad)
        with self.session() as s:
            known = {p: (size, mtime, status, genre) for p, size, mtime, status, genre in
                     s.execute(select(Track.path, Track.size, Track.mtime, Track.status,
                                      Track.genre))}
            imported_paths = set(s.scalars(select(ImportedVA.path).where(
                ImportedVA.path.is_not(None))))
            imported_keys = {tuple(r) for r in s.execute(
                select(ImportedVA.artist_key, ImportedVA.title_key).where(
                    ImportedVA.artist_key.is_not(None)))}
        todo, genre_unread = [], []
        for item in found:
            old = known.get(item[0])
            if old and old[0] == item[1] and old[1] == item[2] and old[2] == "ok":
                report.unchanged += 1
                if old[3] is None:
                    genre_unread.append(item[0])
            else:
                todo.append(item)
        csv_keys = frozenset(imported_paths | imported_keys)
        batch = [scanning.FileResult(path=p, size=-1, mtime=0.0, title=Path(p).stem, error=e)
                 for p, e in bad.items()]
        report.errors.extend(bad.items())
        last = time.monotonic()
        bar = tqdm(total=len(todo), unit="file", desc="scan", disable=not progress,
                   dynamic_ncols=True)
        try:
            for res in scanning.analyse_all(todo, csv_keys, workers):
                batch.append(res)
                bar.update(1)
                if res.error:
                    report.errors.append((res.path, res.error))
                    bar.set_postfix(errors=len(report.errors), refresh=False)
                if len(batch) >= BATCH_FILES or time.monotonic() - last > BATCH_SECONDS:
                    self._store(batch, report)
                    batch, last = [], time.monotonic()
            self._store(batch, report)
        finally:
            bar.close()
        self._fill_genres(genre_unread)
        report.missing = self._mark_missing(roots, seen)
        self.apply_imported_va()
        self.refit_moods()
        report.seconds = time.monotonic() - t0
        return report

    def _store(self, batch: list[scanning.FileResult], report: scanning.ScanReport) -> None:
        if not batch:
            return
        now = utcnow()
        rows = []
        for r in batch:
            if r.error:
                status = "missing" if r.gone else "error"
            else:
                status = "ok"
                report.analysed += 1
                report.by_source[r.va_source or "none"] = report.by_source.get(
                    r.va_source or "none", 0) + 1
                report.audio_s += r.audio_s
                report.cpu_s += r.cpu_s
            rows.append({"path": r.path, "title": r.title, "artist": r.artist, "album": r.album,
                         "genre": r.genre,
                         "duration_s": r.duration_s, "size": r.size, "mtime": r.mtime,
                         "status": status, "error": r.error or r.note, "scanned_at": now,
                         "va_source": None if r.va_source == "csv" else r.va_source,
                         "valence": None if r.va_source == "csv" else r.valence,
                         "arousal": None if r.va_source == "csv" else r.arousal})
        stmt = insert(Track)
        cols = [c for c in rows[0] if c != "path"]
        with self.session() as s:
            s.execute(stmt.on_conflict_do_update(
                index_elements=["path"], set_={c: stmt.excluded[c] for c in cols}), rows)
            self._bump_revision(s)

    def _fill_genres(self, paths: list[str]) -> None:
        """Read just the genre tag of unchanged tracks stored before genres were read (a
        library from schema 0001), so an upgrade does not need a full re-analysis."""
        for start in range(0, len(paths), 200):
            genres = {p: scanning.read_genre(p) for p in paths[start:start + 200]}
            with self.session() as s:
                ids = {p: i for p, i in s.execute(select(Track.path, Track.id).where(
                    Track.path.in_(list(genres))))}
                s.execute(update(Track), [{"id": ids[p], "genre": g}
                                          for p, g in genres.items() if p in ids])
                self._bump_revision(s)

    def _mark_missing(self, roots: list[Path], seen: set[str]) -> int:
        prefixes = tuple(str(r).rstrip(os.sep) + os.sep for r in roots)
        with self.session() as s:
            gone = [tid for tid, path in s.execute(select(Track.id, Track.path).where(
                Track.status != "missing")) if path.startswith(prefixes) and path not in seen]
            if gone:
                s.execute(update(Track), [{"id": t, "status": "missing",
                                           "error": "file no longer found"} for t in gone])
                self._bump_revision(s)
        return len(gone)
