"""Durability: SIGKILL at random moments while scanning and recording presses loses nothing.

A driver (``tests/feedback_driver.py``) scans a real folder and records like/skip presses through
the real library; a press counts as acknowledged once the driver printed it, which it does only
after the commit returned. The test kills the worker at a random moment, again and again, then
checks ``PRAGMA integrity_check`` and that every acknowledged press is in the database.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.music_clips import tone

REPO = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("RESCNN_KILLS", "100"))


def _read_until(proc: subprocess.Popen, prefix: str, acks: list[str], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"driver ended early: {proc.stderr.read()[-2000:]}")
        line = line.strip()
        if line.startswith("ack "):
            acks.append(line[4:])
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no {prefix!r} from the driver within {timeout} s")


def test_sigkill_at_random_moments_loses_no_acknowledged_press(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        tone(music / f"t{i}.wav", 0.5, freq)
    db = tmp_path / "lib.sqlite"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "feedback_driver.py"), str(db),
                             str(music)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    rng = random.Random(20261125)
    acks: list[str] = []
    killed = 0
    try:
        for round_no in range(KILLS):
            proc.stdin.write(f"go {round_no}\n")
            proc.stdin.flush()
            pid = int(_read_until(proc, "pid ", acks).split()[1])
            if rng.random() < 0.7:   # most rounds die while presses are being committed
                _read_until(proc, "ack ", acks)
            time.sleep(rng.uniform(0.0, 0.2))    # anywhere: opening, scanning, mid-commit
            os.kill(pid, signal.SIGKILL)
            status = _read_until(proc, "exit ", acks)
            killed += status == "exit -9"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert killed >= KILLS * 0.95, f"only {killed} of {KILLS} rounds were killed mid-work"
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {m for (m,) in con.execute("SELECT mood FROM feedback")}
        tracks = con.execute("SELECT count(*) FROM tracks WHERE status = 'ok'").fetchone()[0]
    finally:
        con.close()
    lost = [a for a in acks if a not in stored]
    assert acks, "no press was ever acknowledged: the kills came too early to test anything"
    assert not lost, f"{len(lost)} of {len(acks)} acknowledged presses lost: {lost[:5]}"
    assert tracks == 3
    print(f"\nkills survived: {killed}, acknowledged presses: {len(acks)}, all in the database")
