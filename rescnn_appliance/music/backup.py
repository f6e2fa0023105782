"""The copies of the library taken before a schema upgrade, and putting one back.

Before migrating an existing file, :func:`rescnn_appliance.music.db.open_engine` copies it aside
to ``<name>.bak-<old revision>-<YYYYmmdd-HHMMSS>`` with SQLite's online backup. When an upgrade
goes wrong (power lost mid-migration and the file damaged, or a release to step back from),
:func:`restore` puts such a copy back:

- the copy must pass ``PRAGMA integrity_check`` first (a damaged copy is refused, one line);
- it refuses while another process has the library open (the daemon: stop the service first);
- the file it replaces is itself copied aside, as it is (with its ``-wal``), to
  ``<name>.bak-restore-<time>``, so a restore is undone by restoring that;
- the target's stale ``-wal``/``-shm`` are removed (a WAL of the damaged file must not be
  replayed onto the copy); the copy keeps the owner and mode of the file it replaces.

The next start of the daemon upgrades the restored file again (taking a new copy first).

Example::

    >>> for b in list_backups(db):                      # doctest: +SKIP
    ...     print(b.path.name, b.taken, b.size)
    library.sqlite.bak-0001-20260101-100000 2026-01-01 10:00:00 53248
    >>> restore(db, latest(db))                         # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STAMP_FORMAT = "%Y%m%d-%H%M%S"
RESTORE_TAG = "restore"  # the revision part of the copy taken by restore itself
# SQLite's unix VFS: every connection to a WAL database holds a shared lock on this byte of the
# -shm file (its "dead man switch", UNIX_SHM_DMS) for as long as it is open.
SHM_DMS_BYTE = 128


class BackupError(Exception):
    """A backup cannot be listed or restored; the message is one line naming the file."""


@dataclass(frozen=True)
class Backup:
    """One copy of the library: its file, the schema revision it had, when it was taken.

    Example::

        >>> b = Backup.from_path(Path("/s/library.sqlite.bak-0001-20260101-100000"))
        >>> b.revision, b.taken.isoformat(sep=" ")
        ('0001', '2026-01-01 10:00:00')
    """

    path: Path
    revision: str
    taken: datetime

    @classmethod
    def from_path(cls, path: Path) -> Backup:
        rest = path.name.rsplit(".bak-", 1)[-1]
        revision, _, stamp = rest.partition("-")
        try:
            taken = datetime.strptime(stamp, STAMP_FORMAT)
        except ValueError:  # named by hand: the file's own time
            taken = datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0)
        return cls(path, revision, taken)

    @property
    def size(self) -> int:
        return self.path.stat().st_size + (self.wal.stat().st_size if self.wal.exists() else 0)

    @property
    def wal(self) -> Path:
        """Its write-ahead log: only the copy that :func:`restore` sets aside may have one."""
        return Path(f"{self.path}-wal")


def list_backups(db: Path) -> list[Backup]:
    """The copies of ``db`` in its folder, newest first."""
    db = Path(db)
    found = [Backup.from_path(p) for p in db.parent.glob(f"{db.name}.bak-*")
             if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))]
    return sorted(found, key=lambda b: (b.taken, b.path.name), reverse=True)


def find_backup(db: Path, name: str | Path) -> Backup:
    """The backup called ``name`` (a path, or a file name in the library's folder)."""
    db = Path(db)
    path = Path(name).expanduser()
    if not path.is_file() and len(path.parts) == 1:
        path = db.parent / path
    if not path.is_file():
        raise BackupError(f"{path}: no such backup (see 'rescnn-appliance library restore')")
    return Backup.from_path(path)


def latest(db: Path) -> Backup:
    """The newest copy of ``db``; BackupError when there is none."""
    backups = list_backups(db)
    if not backups:
        raise BackupError(f"{db}: no backups in {Path(db).parent}")
    return backups[0]


def check_backup(backup: Backup) -> str:
    """Its schema revision, after ``PRAGMA integrity_check`` says ok; else BackupError."""
    # immutable: nothing (no -shm, no -wal) is created next to a lone copy
    mode = "mode=ro" if backup.wal.exists() else "immutable=1"
    try:
        conn = sqlite3.connect(f"{backup.path.as_uri()}?{mode}", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = (conn.execute("SELECT version_num FROM alembic_version").fetchone()
                        if "alembic_version" in tables else None)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup.path}: not a usable SQLite database ({exc})") from None
    if result != ["ok"]:
        raise BackupError(f"{backup.path}: damaged (integrity_check: {'; '.join(result[:3])})")
    if not {"tracks", "feedback"} <= tables:
        raise BackupError(f"{backup.path}: not a music library (no tracks/feedback tables)")
    return revision[0] if revision else "none"


def in_use(db: Path) -> bool:
    """True when another process has ``db`` open (the daemon, a scan, a ``library`` command).

    Asks for the write lock on the byte of the ``-shm`` file that each open connection holds
    shared; a process only has it when nobody else has the database open.
    """
    shm = Path(f"{db}-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackupError(f"{shm}: cannot tell whether the library is in use ({exc.strerror}); "
                          "run as the service's user or root") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)  # also drops any lock of ours on the file


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did: the backup used, its revision, where the old file went."""

    backup: Backup
    revision: str
    previous: Path | None


def restore(db: Path, backup: Backup) -> Restored:
    """Put ``backup`` in place of ``db`` (see the module docstring); BackupError when refused."""
    db = Path(db)
    revision = check_backup(backup)
    if in_use(db):
        raise BackupError(f"{db}: in use by another process (the daemon?); stop it first: "
                          "sudo systemctl stop rescnn-appliance")
    wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
    previous = None
    if db.exists():
        previous = db.with_name(f"{db.name}.bak-{RESTORE_TAG}-{time.strftime(STAMP_FORMAT)}")
        if previous.exists():
            previous = previous.with_name(previous.name + f"-{os.getpid()}")
        _copy(db, previous)
        if wal.exists():  # what the old file had not checkpointed yet belongs with it
            _copy(wal, Path(f"{previous}-wal"))
    staged = db.with_name(f".{db.name}.restoring")
    _copy(backup.path, staged)
    if db.exists():
        st = db.stat()
        os.chmod(staged, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(staged, st.st_uid, st.st_gid)
    for stale in (wal, shm):
        stale.unlink(missing_ok=True)
    os.replace(staged, db)
    if backup.wal.exists():
        _copy(backup.wal, wal)
    _fsync_dir(db.parent)
    return Restored(backup, revision, previous)


def _copy(src: Path, dest: Path) -> None:
    try:
        shutil.copyfile(src, dest)
        with open(dest, "rb+") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        raise BackupError(f"{dest}: cannot copy {src} there ({exc.strerror or exc})") from None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
