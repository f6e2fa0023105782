"""Once a second while the bench runs: CPU, memory, temperature, frequency, throttling, power.

:class:`SystemSampler` runs on its own thread and hands each sample (a dict) to ``emit``. CPU use
comes from psutil (process: percent of one core, so up to 400 on a Pi 3; system: percent of all
cores); temperature, frequencies and throttling from :mod:`rescnn_appliance.devices.thermal`;
power from the best meter :func:`~rescnn_appliance.devices.power.find_power_meter` finds,
else the CPU-load estimate, always with ``power_estimated`` and ``power_source``.

Sysfs and procfs are read under ``root`` (``/`` on a real machine) so tests can lay out a tree.

Example::

    >>> samples = []
    >>> sampler = SystemSampler(samples.append, root="/", vcgencmd=None)
    >>> sampler.sample()["rss_mb"] > 0
    True
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from rescnn_appliance.devices.power import LoadEstimateMeter, find_power_meter
from rescnn_appliance.devices.thermal import (
    cpu_frequencies_mhz,
    cpu_temperature_c,
    read_throttled,
)

log = logging.getLogger(__name__)


def board_id(root: str | os.PathLike[str] = "/") -> str:
    """The board's model (device tree, else /proc/cpuinfo's model name) and the hostname.

    Runs on the same board are compared with each other; the id keeps them apart.

    Example::

        >>> "@" in board_id("/")
        True
    """
    model = None
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        try:
            model = Path(root, rel).read_bytes().rstrip(b"\0\n").decode(errors="replace")
            break
        except OSError:
            continue
    if not model:
        try:
            for line in Path(root, "proc/cpuinfo").read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    model = value.strip()
                    break
        except OSError:
            pass
    return f"{model or 'unknown board'} @ {socket.gethostname()}"


def open_power_meter(root: str | os.PathLike[str], vcgencmd: str | None) -> Any:
    """The best meter under ``root``; the load estimate on the live /proc when ``root`` has none."""
    try:
        return find_power_meter(root, vcgencmd=vcgencmd)
    except OSError as exc:  # the load estimate needs proc/stat under root
        log.info("no meter and no proc/stat under %s (%s): estimating from /proc/stat", root, exc)
        return LoadEstimateMeter("/")


class SystemSampler:
    """Samples the system every ``period_s`` on a thread; ``frames`` is read for the fps.

    ``label`` (the variant being run) and ``frames`` (frames so far) are set by the bench loop.

    Example::

        >>> s = SystemSampler(print, root="/", vcgencmd=None)   # doctest: +SKIP
        >>> s.start(); ...; s.stop()                             # doctest: +SKIP
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None], root: str | os.PathLike[str] = "/",
                 vcgencmd: str | None = "vcgencmd", period_s: float = 1.0) -> None:
        self.emit = emit
        self.root = root
        self.vcgencmd = vcgencmd
        self.period_s = period_s
        self.label = ""
        self.frames = 0
        self.meter = open_power_meter(root, vcgencmd)
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        psutil.cpu_percent(None)
        self.t0 = time.monotonic()
        self._last = (self.t0, 0)
        self._power_error = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    @property
    def power_source(self) -> str:
        return str(self.meter.name)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._last = (self.t0, self.frames)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.emit(self.sample())

    def sample(self) -> dict[str, Any]:
        """One sample now (also what the thread emits each period)."""
        with self._lock:  # the bench loop takes one at the end of each group, too
            now, frames = time.monotonic(), self.frames
            last_t, last_frames = self._last
            self._last = (now, frames)
        throttle = read_throttled(self.root, self.vcgencmd)
        freqs = cpu_frequencies_mhz(self.root)
        out: dict[str, Any] = {
            "type": "second", "variant": self.label, "t": round(now - self.t0, 3),
            "fps": round((frames - last_frames) / (now - last_t), 3) if now > last_t else None,
            "process_cpu_pct": self.process.cpu_percent(None),
            "system_cpu_pct": psutil.cpu_percent(None),
            "rss_mb": round(self.process.memory_info().rss / 2**20, 2),
            "temp_c": cpu_temperature_c(self.root),
            "freq_mhz": round(sum(freqs) / len(freqs), 1) if freqs else None,
            "throttled": None if throttle is None else hex(throttle.raw),
            "throttled_text": None if throttle is None else throttle.describe(),
        }
        try:
            power = self.meter.read()
            out.update(power_w=power.watts, power_estimated=power.estimated,
                       power_source=power.source)
        except OSError as exc:
            if str(exc) != self._power_error:
                self._power_error = str(exc)
                log.warning("power meter unreadable: %s", exc)
            out.update(power_w=None, power_estimated=None, power_source=f"unreadable: {exc}")
        return out
