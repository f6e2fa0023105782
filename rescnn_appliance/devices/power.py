"""Power from the best meter present, else an estimate from CPU load, always marked as such.

Meters, best first (:func:`find_power_meter` picks the first that gives a reading):

1. :class:`HwmonMeter`: an INA2xx/INA3221 current sensor through the kernel's hwmon driver
   (``power*_input`` in µW, else ``curr*_input`` mA × ``in*_input`` mV of the same channel).
2. :class:`Ina219Meter`: an INA219 read directly over I2C with ``smbus2`` (optional, imported
   only here), for boards wired without the device-tree overlay.
3. :class:`PmicMeter`: the Raspberry Pi 5 PMIC, ``vcgencmd pmic_read_adc``: the sum over rails of
   current × voltage. It leaves out the USB/5 V peripherals and the PMIC's own losses.
4. :class:`LoadEstimateMeter`: no meter. ``idle_w + (busy_w - idle_w) × CPU busy share`` on a
   board model; :data:`PI_3B` is about 1.4 W idle and 3.7 W with all four cores busy (the figures
   in the project's bench brief), linear in between. Readings say ``estimated=True``.

Sysfs and procfs are read under ``root`` so tests can lay out real file trees.

Example::

    >>> meter = find_power_meter("/", vcgencmd=None, i2c_bus=None)
    >>> reading = meter.read()
    >>> reading.estimated        # no sensor on this machine
    True
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rescnn_appliance.devices.thermal import CpuLoad, run_vcgencmd

HWMON_DIR = "sys/class/hwmon"
#: hwmon ``name`` values of current/power monitors that sit on a board's supply.
POWER_HWMON_NAMES = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233",
                     "ina238", "ina260", "ina3221")


class PowerMeterError(OSError):
    """A meter that was there cannot be read now (sensor gone, bus error)."""


@dataclass(frozen=True)
class PowerReading:
    """Watts drawn, where the figure came from, and whether it was measured or estimated.

    Example::

        >>> PowerReading(2.1, "estimate: Raspberry Pi 3 Model B model", estimated=True).watts
        2.1
    """

    watts: float
    source: str
    estimated: bool = False
    volts: float | None = None
    amps: float | None = None


class PowerMeter(Protocol):
    """Anything that reads power: ``meter.read() -> PowerReading``."""

    name: str

    def read(self) -> PowerReading: ...


def _read_number(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


class HwmonMeter:
    """A current/power monitor through Linux hwmon, e.g. ``/sys/class/hwmon/hwmon2``.

    Example::

        >>> meters = HwmonMeter.find("/")     # [] where no INA sensor is bound
    """

    def __init__(self, device_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(device_dir)
        chip = (self.dir / "name").read_text().strip() if (self.dir / "name").exists() else "?"
        self.name = f"hwmon {chip} ({self.dir.name})"

    @classmethod
    def find(cls, root: str | os.PathLike[str] = "/") -> list[HwmonMeter]:
        found = []
        for device in sorted(Path(root, HWMON_DIR).glob("hwmon*")):
            try:
                chip = (device / "name").read_text().strip()
            except OSError:
                continue
            if chip in POWER_HWMON_NAMES:
                found.append(cls(device))
        return found

    def _channels(self, kind: str) -> dict[int, float]:
        values = {}
        for path in self.dir.glob(f"{kind}*_input"):
            match = re.fullmatch(rf"{kind}(\d+)_input", path.name)
            value = _read_number(path) if match else None
            if match and value is not None:
                values[int(match.group(1))] = value
        return values

    def read(self) -> PowerReading:
        currents_ma = self._channels("curr")
        volts_mv = self._channels("in")
        powers_uw = self._channels("power")
        one = len(currents_ma) == 1
        volts = volts_mv[min(currents_ma)] / 1000 if one and min(currents_ma) in volts_mv else None
        amps = next(iter(currents_ma.values())) / 1000 if one else None
        if powers_uw:
            return PowerReading(sum(powers_uw.values()) / 1e6, self.name, False, volts, amps)
        pairs = [(currents_ma[n], volts_mv[n]) for n in sorted(currents_ma) if n in volts_mv]
        if not pairs:
            raise PowerMeterError(f"{self.dir}: no power or current+voltage readings")
        watts = sum(ma * mv for ma, mv in pairs) / 1e6
        return PowerReading(watts, self.name, False, volts, amps)


class Ina219Meter:
    """An INA219 on I2C, read with smbus2 (``pip install smbus2``), no calibration needed.

    ``shunt_ohms`` is the shunt resistor on the breakout (0.1 Ω on the common boards).

    Example::

        >>> Ina219Meter.watts_from_registers(shunt_raw=500, bus_raw=(5000 // 4) << 3,
        ...                                  shunt_ohms=0.1)
        (0.25, 5.0, 0.05)
    """

    CONFIG, SHUNT_VOLTAGE, BUS_VOLTAGE = 0x00, 0x01, 0x02

    def __init__(self, bus: int | str = 1, address: int = 0x40, shunt_ohms: float = 0.1) -> None:
        from smbus2 import (
            SMBus,  # optional: only for an INA219 without the kernel driver
        )

        self._bus = SMBus(bus)  # a bus number or a device path such as /dev/i2c-1
        self.address = address
        self.shunt_ohms = shunt_ohms
        self.name = f"INA219 on {bus if isinstance(bus, str) else f'i2c-{bus}'} at 0x{address:02x}"
        config = self._register(self.CONFIG)
        if config & 0xC000:  # bits 15 (reset) and 14 (unused) read 0 on an INA219
            self._bus.close()
            raise PowerMeterError(f"{self.name}: config 0x{config:04x} is not an INA219's")

    def _register(self, register: int) -> int:
        try:
            word = self._bus.read_word_data(self.address, register)
        except OSError as exc:
            raise PowerMeterError(f"{self.name}: {exc}") from exc
        return ((word & 0xFF) << 8) | (word >> 8)  # SMBus words are little-endian, INA219's not

    @staticmethod
    def watts_from_registers(shunt_raw: int, bus_raw: int,
                             shunt_ohms: float) -> tuple[float, float, float]:
        """(watts, volts, amps) from the raw shunt (10 µV/bit, signed) and bus (4 mV/bit)."""
        if shunt_raw >= 0x8000:
            shunt_raw -= 0x10000
        amps = shunt_raw * 10e-6 / shunt_ohms
        volts = (bus_raw >> 3) * 0.004
        return round(volts * amps, 9), round(volts, 6), round(amps, 9)

    def read(self) -> PowerReading:
        watts, volts, amps = self.watts_from_registers(
            self._register(self.SHUNT_VOLTAGE), self._register(self.BUS_VOLTAGE),
            self.shunt_ohms)
        return PowerReading(watts, self.name, False, volts, amps)

    def close(self) -> None:
        self._bus.close()


def pmic_watts(text: str) -> float | None:
    """Sum of current × voltage over the rails in ``vcgencmd pmic_read_adc`` output.

    Example::

        >>> pmic_watts("  VDD_CORE_A current(7)=2.00000000A\\n"
        ...            "  VDD_CORE_V volt(15)=0.80000000V\\n"
        ...            "  EXT5V_V volt(24)=5.10000000V\\n")
        1.6
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for rail, kind, value in re.findall(
            r"^\s*(\S+)_[AV]\s+(current|volt)\(\d+\)=([-\d.eE+]+)[AV]\s*$", text, re.MULTILINE):
        (amps if kind == "current" else volts)[rail] = float(value)
    rails = [rail for rail in amps if rail in volts]
    return round(sum(amps[r] * volts[r] for r in rails), 6) if rails else None


class PmicMeter:
    """The Raspberry Pi 5 PMIC's rail monitors through ``vcgencmd pmic_read_adc``."""

    def __init__(self, vcgencmd: str = "vcgencmd") -> None:
        self.vcgencmd = vcgencmd
        self.name = "Pi 5 PMIC (vcgencmd pmic_read_adc)"

    def read(self) -> PowerReading:
        watts = pmic_watts(run_vcgencmd(self.vcgencmd, "pmic_read_adc") or "")
        if watts is None:
            raise PowerMeterError(f"{self.vcgencmd} pmic_read_adc gave no rail readings")
        return PowerReading(watts, self.name)


@dataclass(frozen=True)
class BoardPowerModel:
    """A board's draw at idle and with all cores busy, for estimates."""

    name: str
    idle_w: float
    busy_w: float
    note: str


PI_3B = BoardPowerModel(
    "Raspberry Pi 3 Model B", 1.4, 3.7,
    "about 1.4 W idle and 3.7 W with four cores busy (figures in the bench brief), linear between")


def board_name(root: str | os.PathLike[str] = "/") -> str | None:
    """The device-tree model string (``Raspberry Pi 3 Model B Rev 1.2``), None off ARM boards."""
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        try:
            return Path(root, rel).read_bytes().rstrip(b"\0\n").decode(errors="replace")
        except OSError:
            continue
    return None


class LoadEstimateMeter:
    """No meter: power estimated from the CPU's busy share on a board model.

    Example::

        >>> meter = LoadEstimateMeter("/")
        >>> meter.read().estimated
        True
    """

    def __init__(self, root: str | os.PathLike[str] = "/", model: BoardPowerModel = PI_3B) -> None:
        self.model = model
        self.load = CpuLoad(root)
        self.load.busy_fraction()  # start the interval now
        board = board_name(root)
        applied = "" if board and board.startswith(model.name) else \
            f", applied to {board or 'an unknown board'}"
        self.name = f"estimate from CPU load: {model.name} model{applied} ({model.note})"

    def read(self) -> PowerReading:
        busy = self.load.busy_fraction()
        watts = self.model.idle_w + (self.model.busy_w - self.model.idle_w) * busy
        return PowerReading(round(watts, 4), self.name, estimated=True)


def find_power_meter(
    root: str | os.PathLike[str] = "/",
    vcgencmd: str | None = "vcgencmd",
    i2c_bus: int | None = 1,
    i2c_address: int = 0x40,
    shunt_ohms: float = 0.1,
    model: BoardPowerModel = PI_3B,
) -> PowerMeter:
    """The best meter that gives a reading now; the load estimate when none does."""
    candidates: list[PowerMeter] = list(HwmonMeter.find(root))
    i2c_dev = Path(root, f"dev/i2c-{i2c_bus}")
    if i2c_bus is not None and i2c_dev.exists():
        try:
            candidates.append(Ina219Meter(str(i2c_dev), i2c_address, shunt_ohms))
        except (ImportError, OSError):
            pass
    if vcgencmd:
        candidates.append(PmicMeter(vcgencmd))
    for meter in candidates:
        try:
            meter.read()
        except OSError:
            continue
        return meter
    return LoadEstimateMeter(root, model)
