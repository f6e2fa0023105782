"""Power meters, temperature, frequency and throttling read from real file trees in tmp_path.

The trees are laid out like /sys and /proc on a Pi; ``vcgencmd`` is a real executable script
that prints what the firmware tool prints.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rescnn_appliance.devices.power import (
    PI_3B,
    HwmonMeter,
    Ina219Meter,
    LoadEstimateMeter,
    PmicMeter,
    PowerMeterError,
    find_power_meter,
    pmic_watts,
)
from rescnn_appliance.devices.thermal import (
    CpuLoad,
    ThrottleState,
    cpu_frequencies_mhz,
    cpu_temperature_c,
    read_throttled,
)

PMIC_OUTPUT = """\
     3V7_WL_SW_A current(0)=0.00390372A
       3V3_SYS_A current(1)=0.05074152A
      VDD_CORE_A current(7)=1.20000000A
     3V7_WL_SW_V volt(8)=3.74095200V
       3V3_SYS_V volt(9)=3.31250000V
      VDD_CORE_V volt(15)=0.80000000V
         EXT5V_V volt(24)=5.13784000V
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hwmon(root: Path, index: int, name: str, **files: int) -> Path:
    device = root / "sys/class/hwmon" / f"hwmon{index}"
    write(root, f"sys/class/hwmon/hwmon{index}/name", name + "\n")
    for file, value in files.items():
        write(root, f"sys/class/hwmon/hwmon{index}/{file}", f"{value}\n")
    return device


def fake_vcgencmd(tmp_path: Path, body: str, status: int = 0) -> str:
    script = tmp_path / "bin" / "vcgencmd"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{body}EOF\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def proc_stat(root: Path, user: int, idle: int) -> None:
    write(root, "proc/stat", f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n"
          + "".join(f"cpu{n} 0 0 0 0 0 0 0 0 0 0\n" for n in range(4)))


def test_an_ina219_hwmon_power_file_is_read_in_watts(tmp_path):
    hwmon(tmp_path, 0, "coretemp", temp1_input=45000)
    hwmon(tmp_path, 1, "ina219", power1_input=2_500_000, curr1_input=500, in0_input=50,
          in1_input=5000)
    meter = find_power_meter(tmp_path, vcgencmd=None)
    reading = meter.read()
    assert isinstance(meter, HwmonMeter) and "ina219" in meter.name
    assert reading.watts == pytest.approx(2.5)
    assert (reading.volts, reading.amps, reading.estimated) == (5.0, 0.5, False)


def test_an_ina3221_sums_its_channels_current_times_voltage(tmp_path):
    device = hwmon(tmp_path, 0, "ina3221", curr1_input=600, in1_input=5100, curr2_input=200,
                   in2_input=3300, in4_input=60, in5_input=20)
    (device / "curr3_input").mkdir()  # a disabled channel: not readable as a number
    reading = find_power_meter(tmp_path, vcgencmd=None).read()
    assert reading.watts == pytest.approx(0.6 * 5.1 + 0.2 * 3.3)
    assert not reading.estimated


def test_a_sensor_that_vanishes_raises_a_meter_error(tmp_path):
    device = hwmon(tmp_path, 0, "ina226", curr1_input=400, in1_input=5000)
    meter = HwmonMeter(device)
    assert meter.read().watts == pytest.approx(2.0)
    (device / "curr1_input").unlink()
    with pytest.raises(PowerMeterError, match="hwmon0"):
        meter.read()


def test_hwmon_chips_that_are_not_supply_monitors_are_ignored(tmp_path):
    hwmon(tmp_path, 0, "amdgpu", power1_input=30_000_000)  # a GPU, not the board
    proc_stat(tmp_path, 100, 900)
    assert find_power_meter(tmp_path, vcgencmd=None).read().estimated


def test_pi5_pmic_rails_are_summed(tmp_path):
    meter = find_power_meter(tmp_path, vcgencmd=fake_vcgencmd(tmp_path, PMIC_OUTPUT))
    assert isinstance(meter, PmicMeter)
    expected = 0.00390372 * 3.740952 + 0.05074152 * 3.3125 + 1.2 * 0.8
    assert meter.read().watts == pytest.approx(expected, rel=1e-6)
    assert pmic_watts("throttled=0x0\n") is None


def test_a_hwmon_meter_wins_over_the_pmic(tmp_path):
    hwmon(tmp_path, 3, "ina260", power1_input=3_100_000)
    meter = find_power_meter(tmp_path, vcgencmd=fake_vcgencmd(tmp_path, PMIC_OUTPUT))
    assert isinstance(meter, HwmonMeter)


def test_a_failing_vcgencmd_falls_back_to_the_estimate(tmp_path):
    proc_stat(tmp_path, 0, 0)
    vcgencmd = fake_vcgencmd(tmp_path, "error=1 error_msg=\"Command not registered\"\n", 255)
    assert find_power_meter(tmp_path, vcgencmd=vcgencmd).read().estimated


def test_an_i2c_bus_without_smbus2_or_an_ina219_falls_back(tmp_path):
    write(tmp_path, "dev/i2c-1", "")  # not a real i2c device node: opening or reading fails
    proc_stat(tmp_path, 0, 0)
    meter = find_power_meter(tmp_path, vcgencmd=None, i2c_bus=1)
    assert isinstance(meter, LoadEstimateMeter)


def test_ina219_register_arithmetic():
    watts, volts, amps = Ina219Meter.watts_from_registers(
        shunt_raw=0x10000 - 300, bus_raw=(5100 // 4) << 3 | 0b10, shunt_ohms=0.1)
    assert volts == pytest.approx(5.1)
    assert amps == pytest.approx(-0.03)  # current flowing backwards reads negative
    assert watts == pytest.approx(-0.153)


def test_the_estimate_follows_cpu_load_on_the_pi3b_model(tmp_path):
    write(tmp_path, "proc/device-tree/model", "Raspberry Pi 3 Model B Rev 1.2\0")
    proc_stat(tmp_path, 1000, 9000)
    meter = find_power_meter(tmp_path, vcgencmd=None)
    assert isinstance(meter, LoadEstimateMeter)
    proc_stat(tmp_path, 1000, 9000 + 400)  # idle
    idle = meter.read()
    assert idle.watts == pytest.approx(PI_3B.idle_w) and idle.estimated
    proc_stat(tmp_path, 1000 + 200, 9400 + 200)  # half busy
    assert meter.read().watts == pytest.approx((1.4 + 3.7) / 2)
    proc_stat(tmp_path, 1200 + 400, 9600)  # all cores busy
    assert meter.read().watts == pytest.approx(3.7)
    assert "Raspberry Pi 3 Model B model" in idle.source and "applied to" not in idle.source


def test_the_estimate_says_when_the_board_is_not_a_pi3b(tmp_path):
    proc_stat(tmp_path, 0, 0)
    reading = LoadEstimateMeter(tmp_path).read()
    assert reading.estimated and "applied to an unknown board" in reading.source
    write(tmp_path, "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\0")
    assert "applied to Raspberry Pi 4" in LoadEstimateMeter(tmp_path).read().source


def test_cpu_load_without_proc_stat_is_an_error_not_a_zero(tmp_path):
    with pytest.raises(OSError, match="proc/stat"):
        CpuLoad(tmp_path).busy_fraction()


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path):
    write(tmp_path, "sys/class/thermal/thermal_zone0/type", "gpu-thermal\n")
    write(tmp_path, "sys/class/thermal/thermal_zone0/temp", "39000\n")
    write(tmp_path, "sys/class/thermal/thermal_zone1/type", "cpu-thermal\n")
    write(tmp_path, "sys/class/thermal/thermal_zone1/temp", "61234\n")
    assert cpu_temperature_c(tmp_path) == pytest.approx(61.234)
    assert cpu_temperature_c(tmp_path / "nowhere") is None


def test_cpu_frequencies_in_cpu_order(tmp_path):
    for n, khz in [(0, 1200000), (1, 600000), (10, 1400000), (2, 600000)]:
        write(tmp_path, f"sys/devices/system/cpu/cpu{n}/cpufreq/scaling_cur_freq", f"{khz}\n")
    write(tmp_path, "sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1\n")
    assert cpu_frequencies_mhz(tmp_path) == [1200.0, 600.0, 600.0, 1400.0]


def test_throttling_from_vcgencmd_then_from_sysfs(tmp_path):
    write(tmp_path, "sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
    state = read_throttled(tmp_path, vcgencmd=fake_vcgencmd(tmp_path, "throttled=0x80000\n"))
    assert state.source == "vcgencmd get_throttled"
    assert state.soft_temp_limit_since_boot and not state.under_voltage_now
    failing = fake_vcgencmd(tmp_path, "VCHI initialization failed\n", 255)
    state = read_throttled(tmp_path, vcgencmd=failing)
    assert state.source.endswith("get_throttled") and state.raw == 0x50005
    assert state.under_voltage_now and state.throttled_now and state.under_voltage_since_boot
    assert not state.frequency_capped_now
    assert read_throttled(tmp_path / "x86", vcgencmd=None) is None


def test_throttle_descriptions_read_well():
    assert ThrottleState(0, "t").describe() == "ok"
    assert ThrottleState(0x10000, "t").describe() == "since boot: under-voltage"
    assert ThrottleState(0x2, "t").describe() == "frequency capped now"
