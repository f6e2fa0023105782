"""Figures for the device layer: VLC event timing, button latency, sd_notify cost, unit exposure.

Run: ``.venv/bin/python benchmarks/devices_bench.py`` (about 30 s). Prints a Markdown table.
VLC uses the ``dummy`` output here, which decodes ahead of real time: "end" then means "decoding
finished", not "the last sample was heard".
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from rescnn_appliance.devices.buttons import Buttons
from rescnn_appliance.devices.player import Player
from rescnn_appliance.devices.service import ServiceNotifier


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    def fmt(seconds: float) -> str:
        milli = seconds * 1e3
        return f"{milli:.1f} ms" if milli >= 1 else f"{milli:.3f} ms"

    return f"p50 {fmt(statistics.median(values))}, p95 {fmt(p95)} (n={len(values)})"


def vlc_figures(tmp: Path) -> list[tuple[str, str]]:
    rate = 16000
    clip = tmp / "clip.wav"
    sf.write(clip, (0.3 * np.sin(np.arange(rate * 2) / 7)).astype("float32"), rate)
    long_clip = tmp / "long.wav"
    sf.write(long_clip, (0.3 * np.sin(np.arange(rate * 6) / 7)).astype("float32"), rate)
    corrupt = tmp / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    events: queue.Queue = queue.Queue()
    rows = []
    with Player(on_event=events.put, aout="dummy", fade_s=1.0) as player:
        for label, path, n in [("2 s WAV: play() to end event", clip, 5),
                               ("missing file: play() to error event", tmp / "gone.wav", 20),
                               ("corrupt file: play() to end/error event", corrupt, 10)]:
            took = []
            for _ in range(n):
                start = time.perf_counter()
                player.play(path)
                events.get(timeout=10)
                took.append(time.perf_counter() - start)
            rows.append((label, ms(took)))
        took = []
        for _ in range(3):
            player.play(long_clip)
            time.sleep(0.2)
            start = time.perf_counter()
            player.skip()
            event = events.get(timeout=5)
            assert event.kind == "skipped"
            took.append(time.perf_counter() - start)
        rows.append(("skip() with fade_s=1.0 to skipped event", ms(took)))
    return rows


def button_figures() -> list[tuple[str, str]]:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    got: queue.Queue = queue.Queue()
    took = []
    with Buttons(got.put, pin_factory=factory, bounce_s=0.01):
        pin = factory.pin(17)
        for _ in range(200):
            start = time.perf_counter()
            pin.drive_low()
            got.get(timeout=1)
            took.append(time.perf_counter() - start)
            time.sleep(0.012)
            pin.drive_high()
            time.sleep(0.012)
    factory.close()
    return [("like pin low to callback (MockFactory)", ms(took))]


def notify_figures(tmp: Path) -> list[tuple[str, str]]:
    path = tmp / "notify"
    rows = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        os.environ["NOTIFY_SOCKET"] = str(path)
        for backend in ("libsystemd", "socket"):
            try:
                notifier = ServiceNotifier(backend=backend)
            except ImportError:
                continue
            took = []
            for _ in range(500):
                start = time.perf_counter()
                notifier.watchdog()
                took.append(time.perf_counter() - start)
                sock.recv(256)
            rows.append((f"WATCHDOG=1 send ({backend})", ms(took)))
    del os.environ["NOTIFY_SOCKET"]
    return rows


def unit_figures() -> list[tuple[str, str]]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return [("unit exposure", "systemd-analyze not installed")]
    unit = REPO / "systemd" / "rescnn-appliance.service"
    out = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                         check=False, capture_output=True, text=True).stdout
    match = re.search(r"Overall exposure level for \S+: (\S+ \S+)", out)
    version = subprocess.run([analyze, "--version"], check=False, capture_output=True,
                             text=True).stdout.split("\n")[0]
    return [(f"unit exposure, `systemd-analyze security --offline=yes` ({version})",
             match.group(1) if match else "?")]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = vlc_figures(Path(tmp)) + button_figures() + notify_figures(Path(tmp)) + \
            unit_figures()
    print("| measure | result |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
