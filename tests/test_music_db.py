"""The SQLite file: migrations up and down, WAL, foreign keys, users, resume state, busy DB."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rescnn_appliance.music import db
from rescnn_appliance.music.library import Library, UnknownUser


def _tables(path: Path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    finally:
        con.close()


def test_open_creates_schema_at_head_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "state" / "lib.sqlite")
    assert {"users", "tracks", "feedback", "plays", "mood_models", "app_state"} <= _tables(lib.path)
    assert db.current_revision(lib.engine) == db.head_revision()
    with lib.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    lib.close()


def test_downgrade_to_base_and_upgrade_again_copies_the_old_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite"
    lib = Library.open(path)
    lib.add_user("ana")
    db.downgrade(lib.engine, "base")
    assert "users" not in _tables(path)
    lib.close()
    Library.open(path).close()  # an existing file behind head: backup, then upgrade
    assert "users" in _tables(path)
    backups = list(tmp_path.glob("lib.sqlite.bak-*"))
    assert len(backups) == 1 and "alembic_version" in _tables(backups[0])


def _columns(path: Path, table: str) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[1] for r in con.execute(f"pragma table_info({table})")}
    finally:
        con.close()


def test_the_genre_migration_round_trip_keeps_tracks_feedback_and_plays(tmp_path: Path) -> None:
    """0002 adds tracks.genre; going down to 0001 and up again loses only the genres (with
    foreign keys on, rebuilding the tracks table would cascade-delete the history)."""
    path = tmp_path / "lib.sqlite"
    lib = Library.open(path)
    lib.add_user("ana")
    with lib.session() as s:
        s.add(db.Track(path="/m/a.flac", title="a", genre="Jazz", status="ok", valence=0.1,
                       arousal=0.2))
    tid = lib.track("/m/a.flac").id
    lib.record_feedback("ana", tid, "like", 0.1, 0.2, "happy")
    lib.record_play("ana", tid, ended_how="complete")
    assert lib.track(tid).genre == "Jazz"
    db.downgrade(lib.engine, "0001")
    assert db.current_revision(lib.engine) == "0001"
    assert "genre" not in _columns(path, "tracks")
    con = sqlite3.connect(path)
    counts = [con.execute(f"select count(*) from {t}").fetchone()[0]
              for t in ("tracks", "feedback", "plays", "users")]
    con.close()
    assert counts == [1, 1, 1, 1]
    lib.close()
    lib = Library.open(path)  # behind head: copied aside, then upgraded
    assert "genre" in _columns(path, "tracks")
    assert lib.track(tid).genre is None and lib.track(tid).title == "a"
    stats = lib.stats()
    assert (stats["feedback"], stats["plays"], lib.users()) == (1, 1, ["ana"])
    lib.close()


def test_a_file_that_is_not_sqlite_gives_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(db.MigrationError, match="lib.sqlite"):
        Library.open(path)


def test_users_and_their_history_are_removed_together(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib.sqlite")
    lib.add_user("ana")
    lib.add_user("ben")
    with pytest.raises(ValueError, match="already exists"):
        lib.add_user("ana")
    with lib.session() as s:
        s.add(db.Track(path="/m/a.flac", title="a", status="ok", valence=0.1, arousal=0.2))
    tid = lib.track("/m/a.flac").id
    lib.record_feedback("ana", tid, "like", 0.1, 0.2, "happy")
    lib.record_feedback("ben", tid, "skip")
    lib.record_play("ana", tid, ended_how="complete")
    lib.set_state("active_user", "ana")
    lib.remove_user("ana")
    assert lib.users() == ["ben"]
    st = lib.stats()
    assert st["feedback"] == 1 and st["plays"] == 0
    assert lib.get_state("active_user") is None
    with pytest.raises(UnknownUser, match="ana"):
        lib.record_feedback("ana", tid, "like")
    with pytest.raises(ValueError, match="kind"):
        lib.record_feedback("ben", tid, "love")


def test_resume_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite"
    lib = Library.open(path)
    lib.set_state("volume", 55)
    lib.set_state("last_track", {"id": 3, "position_s": 12.5})
    lib.set_state("volume", 60)
    lib.close()
    again = Library.open(path)
    assert again.get_state("volume") == 60
    assert again.get_state("last_track") == {"id": 3, "position_s": 12.5}
    assert again.get_state("nothing", "default") == "default"


def test_a_locked_database_raises_database_busy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2)
    lib = Library.open(tmp_path / "lib.sqlite")
    lib.add_user("ana")
    other = sqlite3.connect(tmp_path / "lib.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(db.DatabaseBusy, match="locked"):
            lib.set_state("volume", 1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    lib.set_state("volume", 1)
    assert lib.get_state("volume") == 1


def test_the_alembic_environment_ships_inside_the_package() -> None:
    """An installed wheel has the migrations: they live in the package and setup.cfg's
    package_data globs take every file of them."""
    import configparser
    import glob

    import rescnn_appliance

    package = Path(rescnn_appliance.__file__).parent
    where = db.migrations_dir()
    assert where == package / "migrations"
    cfg = configparser.ConfigParser()
    cfg.read(package.parent / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["rescnn_appliance"].split(",")]
    shipped = {Path(f) for p in patterns for f in glob.glob(str(package / p)) if Path(f).is_file()}
    needed = {f for f in where.rglob("*") if f.is_file() and "__pycache__" not in f.parts}
    assert {where / "env.py", where / "script.py.mako"} <= needed
    assert list((where / "versions").glob("0001_*.py"))
    assert list((where / "versions").glob("0002_*.py"))
    assert needed <= shipped, f"not in package_data: {sorted(map(str, needed - shipped))}"


def test_the_fast_path_head_is_alembics_head_and_skips_importing_it(tmp_path: Path) -> None:
    """open_engine skips Alembic for a file already at HEAD_REVISION: that constant must be
    the newest migration, or a new migration would never run."""
    import subprocess
    import sys

    assert db.HEAD_REVISION == db.head_revision()
    path = tmp_path / "lib.sqlite"
    Library.open(path).close()
    code = ("import sys; from rescnn_appliance.music.library import Library; "
            "Library.open(sys.argv[1]).close(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120, check=False,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_a_short_busy_timeout_gives_up_on_a_locked_database_at_once(tmp_path: Path) -> None:
    """The appliance's loop opens the library with a short wait: a write another process
    blocks is refused within a fraction of a second (and queued), while reads go on."""
    import time

    path = tmp_path / "lib.sqlite"
    Library.open(path).close()
    lib = Library.open(path, busy_timeout_s=0.05)
    lib.add_user("ana")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(db.DatabaseBusy, match="locked"):
            lib.set_state("volume", 1)
        assert time.monotonic() - t0 < 1.0  # the default would wait 5 s
        assert lib.users() == ["ana"]  # WAL: reading is not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    lib.set_state("volume", 1)
    assert lib.get_state("volume") == 1
    lib.close()
