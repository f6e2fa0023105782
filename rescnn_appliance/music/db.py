"""The music database: SQLAlchemy 2.x models and an engine set up for a small appliance.

SQLite in WAL mode with foreign keys on and a busy timeout. The schema is owned by Alembic
(``rescnn_appliance/migrations/``, shipped in the wheel); :func:`open_engine` upgrades an
existing file to head after copying it aside (``<db>.bak-<old revision>``) with SQLite's online
backup.

A write that still finds the database locked after the busy timeout raises
:class:`DatabaseBusy`, so the caller (the appliance's event loop) can queue and retry.

Example::

    >>> engine = open_engine(tmp_path / "library.sqlite")          # doctest: +SKIP
    >>> with Session(engine) as s:                                 # doctest: +SKIP
    ...     s.add(User(name="ana")); s.commit()
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
# The newest revision in migrations/versions. A file already there opens without importing
# Alembic at all (about 11 MB of the daemon's memory); tests check this matches Alembic's head.
HEAD_REVISION = "0002"
FEEDBACK_KINDS = ("like", "skip", "complete", "never")
TRACK_STATUSES = ("ok", "error", "missing")
VA_SOURCES = ("tags", "csv", "audio")


class DatabaseBusy(Exception):
    """The database stayed locked by another writer past the busy timeout; retry later."""


class MigrationError(Exception):
    """The schema could not be brought to head; the message names the database file."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    """A listener in the household; deleting one deletes their feedback and plays."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Track(Base):
    """One audio file found by a scan, with where its valence/arousal came from."""

    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    artist: Mapped[str | None] = mapped_column(Text)
    album: Mapped[str | None] = mapped_column(Text)
    genre: Mapped[str | None] = mapped_column(Text)  # as tagged; several joined by "; "
    duration_s: Mapped[float | None] = mapped_column(Float)
    valence: Mapped[float | None] = mapped_column(Float)
    arousal: Mapped[float | None] = mapped_column(Float)
    va_source: Mapped[str | None] = mapped_column(String(8))  # tags | csv | audio
    mood: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[int | None] = mapped_column(Integer)
    mtime: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8), default="ok")  # ok | error | missing
    error: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[datetime | None] = mapped_column(default=utcnow)


class Feedback(Base):
    """A like, skip, complete or never-again, with the listener's state at that moment."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    valence: Mapped[float | None] = mapped_column(Float)
    arousal: Mapped[float | None] = mapped_column(Float)
    mood: Mapped[str | None] = mapped_column(String(16))
    __table_args__ = (Index("ix_feedback_user", "user_id"), Index("ix_feedback_track", "track_id"))


class Play(Base):
    """One play of a track and how it ended (complete, skip, error, stopped)."""

    __tablename__ = "plays"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_how: Mapped[str | None] = mapped_column(String(16))
    __table_args__ = (Index("ix_plays_user", "user_id"),)


class MoodModelRow(Base):
    """A fitted K-means mood model: centroids named by mood, as JSON."""

    __tablename__ = "mood_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    n_tracks: Mapped[int] = mapped_column(Integer)
    centroids_json: Mapped[str] = mapped_column(Text)


class ImportedVA(Base):
    """Valence/arousal from a user's CSV, matched to tracks by path or by artist and title."""

    __tablename__ = "imported_va"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str | None] = mapped_column(Text, index=True)
    artist_key: Mapped[str | None] = mapped_column(Text)
    title_key: Mapped[str | None] = mapped_column(Text)
    valence: Mapped[float] = mapped_column(Float)
    arousal: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)  # "FILE.csv:LINE"
    __table_args__ = (Index("ix_imported_va_artist_title", "artist_key", "title_key"),)


class AppState(Base):
    """Small key-value store for resume after reboot (active user, volume, last track)."""

    __tablename__ = "app_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON


def migrations_dir() -> Path:
    """The Alembic script directory, inside the package (so an installed wheel has it)."""
    here = Path(__file__).resolve().parent.parent / "migrations"
    if not (here / "env.py").is_file():
        raise MigrationError(f"{here}: Alembic migrations missing from the installed package")
    return here


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _on_connect(dbapi_conn: sqlite3.Connection, _record, busy_timeout_s: float) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def make_engine(path: Path | str, busy_timeout_s: float | None = None) -> Engine:
    """An engine on ``path`` with WAL, foreign keys and a busy timeout (default
    :data:`BUSY_TIMEOUT_S`: how long a write waits for another writer); no migration."""
    wait = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
    engine = create_engine(
        f"sqlite:///{Path(path)}",
        connect_args={"check_same_thread": False, "timeout": wait},
    )
    event.listen(engine, "connect", lambda conn, record: _on_connect(conn, record, wait))
    return engine


def _stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the file, read with plain SQL (None: no Alembic table)."""
    with engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                    "AND name = 'alembic_version'").first():
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _backup(engine: Engine, path: Path, revision: str | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = path.with_name(f"{path.name}.bak-{revision or 'none'}-{stamp}")
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(str(dest))
        with target:
            raw.driver_connection.backup(target)
        target.close()
    finally:
        raw.close()
    return dest


def _ddl_engine(engine: Engine) -> Engine:
    """An engine on the same file whose transactions cover DDL too.

    pysqlite sends no BEGIN before CREATE or ALTER, so a migration killed half way would keep
    its first tables while ``alembic_version`` stays old, and every later start would stop on
    "table ... already exists". Here the driver leaves transactions alone and each one starts
    with ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite), so a migration commits whole
    or not at all.
    """
    ddl = make_engine(engine.url.database)

    @event.listens_for(ddl, "connect")
    def _driver_autocommit(dbapi_conn: sqlite3.Connection, _record) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(ddl, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return ddl


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(str(engine.url))
    ddl = _ddl_engine(engine)
    try:
        with ddl.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)
    finally:
        ddl.dispose()


def upgrade(engine: Engine, path: Path, revision: str = "head") -> None:
    """Upgrade to ``revision`` in one transaction (killed half way: nothing of it stays)."""
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, "downgrade", revision)


def open_engine(path: Path | str) -> Engine:
    """Open (creating if needed) the database at ``path`` and bring its schema to head.

    An existing database behind head is first copied aside to ``<name>.bak-<rev>-<time>``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists() and path.stat().st_size > 0
    engine = make_engine(path)
    try:
        if _stored_revision(engine) == HEAD_REVISION:
            return engine  # the usual start: nothing to migrate, Alembic not imported
        rev = current_revision(engine)
        head = head_revision()
        if rev != head:
            if existed and (rev is not None or inspect(engine).get_table_names()):
                dest = _backup(engine, path, rev)
                log.info("copied %s to %s before migrating %s -> %s", path, dest, rev, head)
            upgrade(engine, path)
    except OperationalError as exc:
        engine.dispose()
        if "locked" in str(exc):
            raise DatabaseBusy(f"{path}: database is locked by another process") from None
        raise MigrationError(f"{path}: cannot migrate database: {exc.orig}") from None
    except (sqlite3.DatabaseError, DatabaseError) as exc:
        engine.dispose()
        why = getattr(exc, "orig", None) or exc
        raise MigrationError(f"{path}: not a usable SQLite database ({why})") from None
    return engine


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()
