"""CPU temperature, frequency, load and the Pi's throttling flags, read from sysfs and procfs.

Every function takes ``root`` (``/`` on a real machine) so tests can point it at a file tree laid
out like ``/sys`` and ``/proc`` in a temporary folder. Throttling comes from
``vcgencmd get_throttled`` where that tool works, else from the firmware's sysfs file.

Example::

    >>> temperature = cpu_temperature_c("/")       # e.g. 48.3, or None without a sensor
    >>> frequencies = cpu_frequencies_mhz("/")     # e.g. [1200.0, 1200.0, 600.0, 600.0]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

THERMAL_DIR = "sys/class/thermal"
CPU_DIR = "sys/devices/system/cpu"
THROTTLED_FILE = "sys/devices/platform/soc/soc:firmware/get_throttled"
CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "x86_pkg_temp", "soc_thermal", "cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def run_vcgencmd(vcgencmd: str | None, *args: str, timeout: float = 2.0) -> str | None:
    """Output of ``vcgencmd ARGS`` (a name on PATH or a path), or None where it does not work."""
    if not vcgencmd:
        return None
    exe = shutil.which(vcgencmd)
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *args], check=False, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def cpu_temperature_c(root: str | os.PathLike[str] = "/") -> float | None:
    """The CPU's temperature in °C: the CPU thermal zone if named, else the first readable one."""
    zones = sorted(Path(root, THERMAL_DIR).glob("thermal_zone*"))
    zones.sort(key=lambda z: (_read(z / "type") or "") not in CPU_ZONE_TYPES)
    for zone in zones:
        raw = _read(zone / "temp")
        try:
            return int(raw) / 1000.0 if raw is not None else None
        except ValueError:
            continue
    return None


def cpu_frequencies_mhz(root: str | os.PathLike[str] = "/") -> list[float]:
    """Current frequency of each CPU in MHz, in CPU order; empty without cpufreq."""
    found: list[tuple[int, float]] = []
    for cpu in Path(root, CPU_DIR).glob("cpu[0-9]*"):
        for name in ("scaling_cur_freq", "cpuinfo_cur_freq"):
            raw = _read(cpu / "cpufreq" / name)
            if raw and raw.isdigit():
                found.append((int(cpu.name[3:]), int(raw) / 1000.0))
                break
    return [mhz for _, mhz in sorted(found)]


@dataclass(frozen=True)
class ThrottleState:
    """The Pi firmware's throttling bits, now and since boot.

    Example::

        >>> state = ThrottleState.from_raw(0x50005, "vcgencmd")
        >>> state.under_voltage_now, state.throttled_now, state.under_voltage_since_boot
        (True, True, True)
        >>> state.describe()
        'under-voltage now, throttled now; since boot: under-voltage, throttled'
    """

    raw: int
    source: str

    _NOW: ClassVar[dict[int, str]] = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}

    @classmethod
    def from_raw(cls, raw: int, source: str) -> ThrottleState:
        return cls(raw, source)

    def _bit(self, n: int) -> bool:
        return bool(self.raw >> n & 1)

    under_voltage_now = property(lambda self: self._bit(0))
    frequency_capped_now = property(lambda self: self._bit(1))
    throttled_now = property(lambda self: self._bit(2))
    soft_temp_limit_now = property(lambda self: self._bit(3))
    under_voltage_since_boot = property(lambda self: self._bit(16))
    frequency_capped_since_boot = property(lambda self: self._bit(17))
    throttled_since_boot = property(lambda self: self._bit(18))
    soft_temp_limit_since_boot = property(lambda self: self._bit(19))

    def describe(self) -> str:
        now = [f"{word} now" for bit, word in self._NOW.items() if self._bit(bit)]
        past = [word for bit, word in self._NOW.items() if self._bit(bit + 16)]
        text = ", ".join(now)
        if past:
            text = (text + "; " if text else "") + "since boot: " + ", ".join(past)
        return text or "ok"


def read_throttled(
    root: str | os.PathLike[str] = "/", vcgencmd: str | None = "vcgencmd"
) -> ThrottleState | None:
    """``vcgencmd get_throttled``, else the sysfs file; None off a Pi."""
    out = run_vcgencmd(vcgencmd, "get_throttled")
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out or "")
    if match:
        return ThrottleState.from_raw(int(match.group(1), 16), "vcgencmd get_throttled")
    raw = _read(Path(root, THROTTLED_FILE))
    if raw:
        try:
            return ThrottleState.from_raw(int(raw, 16), f"/{THROTTLED_FILE}")
        except ValueError:
            return None
    return None


class CpuLoad:
    """Share of all CPU time spent busy since the previous call, from ``/proc/stat``.

    The first call reports the share since boot.

    Example::

        >>> load = CpuLoad("/")
        >>> 0.0 <= load.busy_fraction() <= 1.0
        True
    """

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.path = Path(root, "proc/stat")
        self._last: tuple[int, int] = (0, 0)

    def cores(self) -> int:
        text = _read(self.path) or ""
        return sum(1 for line in text.splitlines() if re.match(r"cpu\d+ ", line)) or 1

    def busy_fraction(self) -> float:
        text = _read(self.path)
        if not text or not text.startswith("cpu "):
            raise OSError(f"{self.path}: no 'cpu' line")
        values = [int(v) for v in text.splitlines()[0].split()[1:9]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        total = sum(values)
        d_total, d_idle = total - self._last[0], idle - self._last[1]
        self._last = (total, idle)
        if d_total <= 0:
            return 0.0
        return min(1.0, max(0.0, (d_total - d_idle) / d_total))
