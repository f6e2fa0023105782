"""``rescnn-appliance library restore`` on real SQLite files: the copies taken before a schema
upgrade listed, checked and put back; refused while in use or damaged; undoable.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rescnn_appliance.cli import main
from rescnn_appliance.music.library import Library
from tests.reliability_support import (
    HEAD,
    NEXT_REVISION,
    kill_half_way,
    library_with_history,
    next_release,
    open_with,
)


def cli(db: Path, *argv: str) -> int:
    return main(["--set", f'library.database="{db}"', "library", "restore", *argv])


def users(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("select name from users order by name")]


def copy_of(db: Path, name: str) -> Path:
    """A copy as the upgrade takes it (SQLite's online backup) under ``name``."""
    dest = db.with_name(name)
    src, out = sqlite3.connect(db), sqlite3.connect(dest)
    src.backup(out)
    out.close()
    src.close()
    return dest


def library(db: Path, *names: str) -> Path:
    lib = Library.open(db)
    for name in names:
        lib.add_user(name)
    lib.close()
    return db


def test_without_a_backup_named_it_lists_them_newest_first_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite", "ana")
    older = copy_of(db, "library.sqlite.bak-none-20250101-090000")
    newer = copy_of(db, "library.sqlite.bak-0001-20260301-101500")
    library(db, "ben")
    before = db.read_bytes()
    assert cli(db) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{newer.name}  2026-03-01 10:15:00  ")
    assert out[0].endswith("kB  schema 0001")
    assert out[1].startswith(f"{older.name}  2025-01-01 09:00:00  ")
    assert "--latest" in out[2]
    assert db.read_bytes() == before and users(db) == ["ana", "ben"]


def test_no_backups_is_said_plainly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite")
    assert cli(db) == 0
    assert capsys.readouterr().out == f"no backups of {db} in {tmp_path}\n"
    assert cli(db, "--latest") == 1
    assert capsys.readouterr().err == f"rescnn-appliance: {db}: no backups in {tmp_path}\n"


WRITE_THEN_DIE = textwrap.dedent("""
    import os, signal, sys
    from rescnn_appliance.music.library import Library
    lib = Library.open(sys.argv[1])
    lib.add_user("zoe")
    os.kill(os.getpid(), signal.SIGKILL)  # the user is in the -wal only
""")


def test_restore_puts_the_copy_back_and_sets_the_replaced_file_aside_to_undo(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite", "ana")
    copy_of(db, "library.sqlite.bak-0001-20260301-101500")
    os.chmod(db, 0o640)
    done = subprocess.run([sys.executable, "-c", WRITE_THEN_DIE, str(db)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert Path(f"{db}-wal").stat().st_size > 0  # not checkpointed: zoe is only there

    assert cli(db, "--latest") == 0
    out = capsys.readouterr().out
    assert f"restored from library.sqlite.bak-0001-20260301-101500 (schema {HEAD}" in out
    assert users(db) == ["ana"]
    assert oct(db.stat().st_mode & 0o777) == "0o640"  # the service can still read it
    aside = [p for p in tmp_path.glob("library.sqlite.bak-restore-*")
             if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and f"restore {aside[0].name}" in out

    assert cli(db, aside[0].name) == 0  # undo: the file as it was, its -wal included
    assert users(db) == ["ana", "zoe"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]


HOLD_OPEN = textwrap.dedent("""
    import sys
    from rescnn_appliance.music.library import Library
    lib = Library.open(sys.argv[1])
    print(lib.users(), flush=True)
    sys.stdin.readline()
""")


def test_restore_is_refused_while_another_process_has_the_library_open(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite", "ana")
    copy_of(db, "library.sqlite.bak-0001-20260301-101500")
    library(db, "ben")
    daemon = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(db)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert daemon.stdout.readline().strip() == "['ana', 'ben']"
        assert cli(db, "--latest") == 1
        err = capsys.readouterr().err
        assert err.startswith(f"rescnn-appliance: {db}: in use by another process")
        assert "systemctl stop rescnn-appliance" in err and err.count("\n") == 1
        assert users(db) == ["ana", "ben"]
    finally:
        daemon.communicate("\n", timeout=30)
    assert cli(db, "--latest") == 0  # stopped: now it goes
    assert users(db) == ["ana"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not a library"])
def test_a_damaged_or_foreign_backup_is_refused_in_one_line(
        damage: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite", "ana")
    bad = copy_of(db, "library.sqlite.bak-0001-20260301-101500")
    if damage == "truncated":
        with bad.open("r+b") as fh:
            fh.truncate(bad.stat().st_size // 2)
    elif damage == "garbage":
        data = bytearray(bad.read_bytes())
        data[4096:8192] = os.urandom(4096)  # page 2 overwritten
        bad.write_bytes(bytes(data))
    else:
        bad.unlink()
        with sqlite3.connect(bad) as conn:
            conn.execute("create table notes (text)")
    before = db.read_bytes()
    assert cli(db, bad.name) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rescnn-appliance: {bad}: ") and err.count("\n") == 1, err
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.bak-restore-*"))  # refused before anything was touched


def test_a_missing_backup_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = library(tmp_path / "library.sqlite", "ana")
    assert cli(db, "library.sqlite.bak-0001-nope") == 1
    err = capsys.readouterr().err
    assert err == (f"rescnn-appliance: {tmp_path / 'library.sqlite.bak-0001-nope'}: no such "
                   "backup (see 'rescnn-appliance library restore')\n")


def test_power_lost_during_a_migration_restore_gives_the_library_back(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "state" / "library.sqlite"
    library_with_history(db)  # users ana and ben, 3 feedback rows, at schema HEAD
    release = next_release(tmp_path)  # the next release: migration NEXT_REVISION
    kill_half_way(release, db)  # the copy is taken, then the power goes mid-upgrade
    with db.open("r+b") as fh:  # and the file is damaged
        fh.truncate(db.stat().st_size // 3)
    broken = open_with(release, db)
    assert "not a usable SQLite database" in broken.communicate(timeout=120)[0]

    assert cli(db) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"library.sqlite.bak-{HEAD}-") and f"schema {HEAD}" in listed[0]
    assert cli(db, "--latest") == 0
    capsys.readouterr()
    again = open_with(release, db)  # the next start upgrades the restored copy
    out = again.communicate(timeout=120)[0].strip()
    assert again.returncode == 0, out
    assert out.splitlines()[-1] == f"REV {NEXT_REVISION} ['ana', 'ben'] 3"
