"""Real parts shared by the fault, privacy and soak runs: exported models, face frames, a lock.

- :func:`export_models` writes real TorchScript files (untrained weights, fp32 and int8) with sha256 cards,
  so the appliance starts without the trained ``models/`` (faults need no accurate model).
- :func:`write_demo_faces` renders the demo camera's astronaut face into PNG frames for an image
  folder source (in a temporary folder only; nothing of the research data is used).
- :class:`LockHolder` is another *process* holding ``BEGIN EXCLUSIVE`` on a SQLite file.
- :func:`next_release` is this package plus a test migration after its head (as the next release would
  ship it), :func:`kill_half_way` SIGKILLs it mid-upgrade of a library that
  :func:`library_with_history` filled, :func:`open_with` opens a library with it.

Example::

    >>> models = export_models(tmp_path / "models")           # doctest: +SKIP
    >>> with LockHolder(db):                                   # doctest: +SKIP
    ...     ...                                                # every writer waits
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Self

import cv2

from rescnn_appliance.music.db import HEAD_REVISION

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO / "models"


def export_models(folder: Path) -> Path:
    """fp32 and int8 TorchScript ECNN and VA nets (untrained) with cards in ``folder``; returns it."""
    import numpy as np

    from rescnn_appliance.training.export import quantize_int8, save_module, script_fp32
    from rescnn_appliance.training.nets import build_ecnn, build_va_mobilenet

    folder.mkdir(parents=True, exist_ok=True)
    calibration = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    for name, net, size in (("ecnn", build_ecnn(), 48), ("va", build_va_mobilenet(), 64)):
        net.eval()
        variants = {"fp32": save_module(script_fp32(net, size), folder / f"{name}_fp32.pt"),
                    "int8": save_module(quantize_int8(net, calibration, size), folder / f"{name}_int8.pt")}
        card = {"variants": variants, "input": {"size": size}}
        (folder / f"{name}.json").write_text(json.dumps(card))
    return folder


def models_for_faults(folder: Path) -> Path:
    """The shipped models when present, else freshly exported ones in ``folder``."""
    if (SHIPPED_MODELS / "ecnn.json").is_file() and (SHIPPED_MODELS / "va.json").is_file():
        return SHIPPED_MODELS
    return export_models(folder)


def write_demo_faces(folder: Path, count: int = 4) -> Path:
    """``count`` 640x480 frames of the demo camera with its face in view, as PNG files."""
    from rescnn_appliance.vision.demo_frames import DemoSource

    demo = DemoSource(640, 480, fps=0)
    folder.mkdir(parents=True, exist_ok=True)
    t, written = 2.0, 0
    while written < count:
        if demo.face_in_view(t):
            assert cv2.imwrite(str(folder / f"frame{written:02d}.png"), demo.scene(t))
            written += 1
        t += 0.7
    return folder


_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("begin exclusive")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("rollback")
conn.close()
print("released", flush=True)
"""


class LockHolder:
    """A separate process that holds an exclusive lock on ``db`` until :meth:`release`.

    Example::

        >>> holder = LockHolder(db).acquire()   # doctest: +SKIP
        >>> holder.release()                    # doctest: +SKIP
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.proc: subprocess.Popen[str] | None = None

    def acquire(self) -> Self:
        self.proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(self.db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "locked":
            self.proc.kill()
            raise RuntimeError(f"{self.db}: the lock holder did not get the lock ({line!r})")
        return self

    def release(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- the next release, with one more migration (power loss during an upgrade) ----------

HEAD = HEAD_REVISION  # this release's newest migration; the test one comes after it
NEXT_REVISION = f"{int(HEAD) + 1:04d}"
NEXT_MIGRATION = '''
"""Test-only next release: tracks get a rating column and a ratings table."""
import os, sys, time
import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ratings", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("rating", sa.Integer))
    if os.environ.get("STALL_MIGRATION"):
        print("half-migrated", flush=True)
        time.sleep(120)


def downgrade() -> None:
    op.drop_table("ratings")
'''

OPEN_LIBRARY = textwrap.dedent("""
    import sys
    from rescnn_appliance.music.db import MigrationError, current_revision
    from rescnn_appliance.music.library import Library
    try:
        lib = Library.open(sys.argv[1])
    except MigrationError as exc:
        print(f"ERROR {exc}", flush=True)
        raise SystemExit(1)
    print("REV", current_revision(lib.engine), lib.users(), lib.stats()["feedback"], flush=True)
""")


def next_release(tmp_path: Path) -> Path:
    """A copy of the package with one more migration, as the next release would ship it."""
    root = tmp_path / "next"
    shutil.copytree(REPO / "rescnn_appliance", root / "rescnn_appliance",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "rescnn_appliance" / "migrations" / "versions" / f"{NEXT_REVISION}_rating.py"
     ).write_text(NEXT_MIGRATION.replace("{next}", NEXT_REVISION).replace("{head}", HEAD))
    db_module = root / "rescnn_appliance" / "music" / "db.py"  # its head constant, if any
    db_module.write_text(re.sub(r'^HEAD_REVISION = "\w+"', f'HEAD_REVISION = "{NEXT_REVISION}"',
                                db_module.read_text(), flags=re.MULTILINE))
    return root


def open_with(release: Path, db: Path, **env: str) -> subprocess.Popen[str]:
    # -S: no site hooks, so the editable install of this checkout cannot shadow the release
    path = os.pathsep.join([str(release), sysconfig.get_paths()["purelib"]])
    return subprocess.Popen([sys.executable, "-S", "-c", OPEN_LIBRARY, str(db)], text=True,
                            cwd=release, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": path, **env})


def library_with_history(db: Path) -> None:
    from rescnn_appliance.music import db as schema
    from rescnn_appliance.music.library import Library

    lib = Library.open(db)
    for name in ("ana", "ben"):
        lib.add_user(name)
    with lib.session() as s:
        s.add(schema.Track(path="/music/a.flac", title="a", status="ok", valence=0.1, arousal=0.2))
    track = lib.track("/music/a.flac").id
    for kind in ("like", "skip", "like"):
        lib.record_feedback("ana", track, kind)
    lib.close()


def kill_half_way(release: Path, db: Path) -> None:
    upgrading = open_with(release, db, STALL_MIGRATION="1")
    try:
        assert upgrading.stdout.readline().strip() == "half-migrated"
    finally:
        upgrading.send_signal(signal.SIGKILL)  # the power goes, mid-upgrade
        upgrading.wait(10)
