"""Driver for the SIGKILL durability test: scans a folder and records presses until killed.

It imports everything once, then for every ``go N`` line on stdin forks a worker that

- scans the music folder on a thread (its own connection, as the appliance does), touching one
  file first so the scan really writes;
- records like/skip presses through :class:`~rescnn_appliance.music.library.Library` on the
  main thread, tagging each with ``mood = "pN-K"``, and prints ``ack pN-K`` only after
  ``record_feedback`` has returned (a locked database is retried, as the appliance queues it).

The worker prints ``pid PID`` when it starts; the driver prints ``exit STATUS`` when it is gone.
Forking after the imports keeps each round to a fraction of a second.

Example::

    $ python tests/feedback_driver.py lib.sqlite music/
    go 1
    pid 4242
    ack p1-0
    ack p1-1
    ...                       (the test sends SIGKILL to 4242)
    exit -9
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path

from rescnn_appliance.music.db import DatabaseBusy
from rescnn_appliance.music.library import Library
from rescnn_appliance.music.va_model import VAModel


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())   # unbuffered: nothing waits in a buffer at SIGKILL


def _scan(db: Path, music: Path) -> None:
    lib = Library.open(db)
    try:
        lib.scan([music], progress=False, workers=1)
    except DatabaseBusy:
        pass
    finally:
        lib.close()


def worker(db: Path, music: Path, round_no: int) -> None:
    _say(f"pid {os.getpid()}")
    rng = random.Random(round_no)
    files = sorted(music.iterdir())
    os.utime(files[round_no % len(files)], (time.time(), time.time() + round_no))
    lib = Library.open(db)
    threading.Thread(target=_scan, args=(db, music), daemon=True).start()
    if "owner" not in lib.users():
        try:
            lib.add_user("owner")
        except ValueError:
            pass   # the scan thread's connection raced us? no: another round already did
    track_ids = [t.id for t in lib.tracks()] or [None]
    k = 0
    while True:
        track_ids = track_ids if track_ids[0] is not None else [t.id for t in lib.tracks()] or [None]
        if track_ids[0] is None:
            time.sleep(0.01)
            continue
        tag = f"p{round_no}-{k}"
        try:
            lib.record_feedback("owner", rng.choice(track_ids), rng.choice(["like", "skip"]),
                                valence=rng.uniform(-1, 1), arousal=rng.uniform(-1, 1), mood=tag)
        except DatabaseBusy:
            continue
        _say(f"ack {tag}")
        k += 1


def main() -> int:
    db, music = Path(sys.argv[1]), Path(sys.argv[2])
    VAModel.load()   # loaded before forking, like the imports
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word != "go":
            continue
        pid = os.fork()
        if pid == 0:
            try:
                worker(db, music, int(arg))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        _say(f"exit {-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
