"""Real parts shared by the fault, privacy and soak runs: exported models, face frames, a lock.

- :func:`export_models` writes real TorchScript files (untrained weights, fp32) with sha256 cards,
  so the appliance starts without the trained ``models/`` (faults need no accurate model).
- :func:`write_demo_faces` renders the demo camera's astronaut face into PNG frames for an image
  folder source (in a temporary folder only; nothing of the research data is used).
- :class:`LockHolder` is another *process* holding ``BEGIN EXCLUSIVE`` on a SQLite file.

Example::

    >>> models = export_models(tmp_path / "models")           # doctest: +SKIP
    >>> with LockHolder(db):                                   # doctest: +SKIP
    ...     ...                                                # every writer waits
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Self

import cv2

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO / "models"


def export_models(folder: Path) -> Path:
    """fp32 TorchScript ECNN and VA nets (untrained) with cards in ``folder``; returns it."""
    from rescnn_appliance.training.export import save_module, script_fp32
    from rescnn_appliance.training.nets import build_ecnn, build_va_mobilenet

    folder.mkdir(parents=True, exist_ok=True)
    for name, net, size in (("ecnn", build_ecnn(), 48), ("va", build_va_mobilenet(), 64)):
        net.eval()
        variant = save_module(script_fp32(net, size), folder / f"{name}_fp32.pt")
        card = {"variants": {"fp32": variant}, "input": {"size": size}}
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
