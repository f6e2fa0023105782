"""Appliance figures: start to READY=1, CPU with no face in view, resident memory, press to row.

Runs the real daemon (``python -m rescnn_appliance run``) with a NOTIFY_SOCKET it listens on,
VLC on ``--aout dummy`` and the demo music library; the no-face figure uses a folder source of an
empty room, so the sensing worker idles at ``camera.idle_fps``. The press-to-row figure runs the
appliance in this process with gpiozero's MockFactory and times ``drive_low`` of the like pin to
the feedback row being readable from the SQLite file by another connection.

    .venv/bin/python benchmarks/appliance_figures.py [--models DIR] [--idle-s 30] [--presses 20]

Prints a Markdown table (and the machine's load average, which inflates wall-clock figures).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rescnn_appliance.config import load_settings
from rescnn_appliance.demo import demo_library


def empty_room(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ys = np.linspace(0, 1, 480)[:, None]
    room = (150 + 40 * (1 - ys) + np.zeros((1, 640))).astype(np.uint8)
    cv2.rectangle(room, (460, 70), (590, 480), 110, -1)
    cv2.imwrite(str(folder / "room.png"), room)
    return folder


def daemon_figures(models: Path, work: Path, idle_s: float) -> dict[str, float]:
    state = work / "state"
    demo_library(state)  # written once, as `run` would, outside the timed start
    room = empty_room(work / "room")
    sock_path = work / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "rescnn_appliance", "--set", f'models.dir="{models}"',
            "--set", f'service.state_dir="{state}"', "--set", "library.folders=[]",
            "run", "--source", str(room), "--aout", "dummy", "--no-buttons"]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    ps = psutil.Process(proc.pid)
    ready = None
    try:
        while ready is None and time.monotonic() - t0 < 300:
            try:
                if b"READY=1" in sock.recv(4096):
                    ready = time.monotonic() - t0
            except TimeoutError:
                if proc.poll() is not None:
                    raise SystemExit(f"daemon exited: {proc.stderr.read()[-2000:]}")
        cpu_ready = sum(ps.cpu_times()[:2])
        time.sleep(15)  # let the library scan and the first track start
        c0, w0 = ps.cpu_times(), time.monotonic()
        c0 = sum(c0[:2]) + sum(ch.cpu_times()[0] + ch.cpu_times()[1] for ch in ps.children(True))
        time.sleep(idle_s)
        c1 = sum(ps.cpu_times()[:2]) + sum(ch.cpu_times()[0] + ch.cpu_times()[1]
                                           for ch in ps.children(True))
        idle_cpu = 100 * (c1 - c0) / (time.monotonic() - w0)
        # psutil's "shared" is the kernel's RssFile + RssShmem: mapped library pages, clean and
        # droppable under pressure; the rest (heap, tensors) is what a 1 GB Pi must really hold
        mem = ps.memory_info()
        rss, rss_file = mem.rss / 2**20, mem.shared / 2**20
        proc.terminate()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    return {"ready_s": ready or float("nan"), "ready_cpu_s": cpu_ready, "idle_cpu_pct": idle_cpu,
            "rss_mb": rss, "rss_anon_mb": rss - rss_file, "rss_file_mb": rss_file, "exit": proc.returncode}


def press_to_row(models: Path, work: Path, presses: int) -> list[float]:
    from gpiozero.pins.mock import MockFactory

    from rescnn_appliance.appliance import Appliance

    music = demo_library(work / "press", seconds=60.0)
    settings = load_settings(None, {
        "models.dir": str(models), "camera.source": "folder",
        "camera.path": str(empty_room(work / "room2")), "player.aout": "dummy",
        "library.folders": [str(music)], "service.state_dir": str(work / "press-state")})
    pins = MockFactory()
    app = Appliance(settings, pin_factory=pins)
    app.start()
    loop = threading.Thread(target=app.run, daemon=True)
    loop.start()
    times = []
    try:
        deadline = time.monotonic() + 300
        while app.now_playing is None and time.monotonic() < deadline:
            time.sleep(0.05)
        like = pins.pin(settings.buttons.like_pin)
        conn = sqlite3.connect(settings.database_path)
        for i in range(presses):
            before = conn.execute("select count(*) from feedback where kind='like'").fetchone()[0]
            t = time.perf_counter()
            like.drive_low()
            while conn.execute("select count(*) from feedback where kind='like'").fetchone()[0] \
                    == before:
                time.sleep(0.0005)
            times.append(1000 * (time.perf_counter() - t))
            like.drive_high()
            time.sleep(0.15)  # past the debounce window
        conn.close()
    finally:
        app.request_stop("benchmark over")
        loop.join(10)
        app.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=load_settings(None).models_dir)
    ap.add_argument("--idle-s", type=float, default=30.0)
    ap.add_argument("--presses", type=int, default=20)
    a = ap.parse_args()
    if not (a.models / "ecnn.json").is_file():
        print(f"{a.models}: no ecnn.json; pass --models DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        d = daemon_figures(a.models, Path(tmp), a.idle_s)
        presses = press_to_row(a.models, Path(tmp), a.presses)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("| measure | value | target |\n|---|---|---|")
    print(f"| start to READY=1 (wall) | {d['ready_s']:.2f} s (CPU {d['ready_cpu_s']:.2f} s) "
          "| at most 5 s |")
    print(f"| CPU with no face in view (daemon + VLC playing) | {d['idle_cpu_pct']:.1f}% of one core "
          "| at most 5% |")
    print(f"| resident memory of the running daemon | {d['rss_mb']:.0f} MB (anonymous {d['rss_anon_mb']:.0f} MB, "
          f"library files {d['rss_file_mb']:.0f} MB) | at most 400 MB |")
    print(f"| button press to feedback row committed, p50 / max of {len(presses)} | "
          f"{statistics.median(presses):.1f} / {max(presses):.1f} ms | at most 50 ms |")
    print(f"| SIGTERM exit status | {d['exit']} | 0 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
