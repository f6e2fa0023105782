"""The shipped systemd unit: ``systemd-analyze verify`` is silent, exposure is at most 2.5, and
the settings the appliance relies on are there.

``verify`` checks that ExecStart's program exists, so it runs on a copy whose ExecStart points at
a program on this machine; everything else is checked as shipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rescnn_appliance.config import EX_CONFIG

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "rescnn-appliance.service"
MAX_EXPOSURE = 2.5

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze not installed")


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, repeated keys kept in order."""
    found, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(key: str) -> list[str]:
    return [v for _, k, v in directives(UNIT.read_text()) if k == key]


def one(key: str) -> str:
    found = values(key)
    assert len(found) == 1, f"{key}= appears {len(found)} times"
    return found[0]


def verify(unit_text: str, tmp_path: Path) -> str:
    copy = tmp_path / UNIT.name
    copy.write_text(re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={shutil.which('true')}", unit_text))
    done = subprocess.run([analyze, "verify", "--man=no", "--generators=no", str(copy)],
                          check=False, capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else
                                                  f"\n(exit status {done.returncode})")


@needs_analyze
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path):
    assert verify(UNIT.read_text(), tmp_path) == ""


@needs_analyze
def test_verify_would_catch_a_mistake(tmp_path):
    broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSeconds=")
    assert "WatchdogSeconds" in verify(broken, tmp_path)


@needs_analyze
def test_exposure_is_at_most_2_5():
    done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                          check=False, capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_it_is_a_notify_service_with_a_watchdog_that_restarts_on_failure():
    assert one("Type") == "notify"
    assert float(one("WatchdogSec")) > 0
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == str(EX_CONFIG)
    assert one("ExecStart") == "/opt/rescnn-appliance/venv/bin/rescnn-appliance run"


def test_it_runs_as_its_own_user_with_the_device_groups():
    assert one("User") == "rescnn" and one("User") != "root"
    assert set(one("SupplementaryGroups").split()) == {"video", "audio", "gpio", "i2c"}
    assert one("StateDirectory") == "rescnn-appliance"
    assert one("StateDirectoryMode") == "0750"
    assert one("ConfigurationDirectory") == "rescnn-appliance"
    assert one("CapabilityBoundingSet") == ""
    assert one("NoNewPrivileges") == "yes"


def test_it_reaches_camera_sound_gpio_and_i2c_and_nothing_else():
    assert one("DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in values("DeviceAllow")}
    for group in ("char-video4linux", "char-media", "char-dma_heap", "char-alsa",
                  "char-gpiochip", "char-i2c", "char-vchiq", "/dev/gpiomem"):
        assert group in allowed
    assert values("PrivateDevices") in ([], ["no"])


def test_no_network_only_local_sockets():
    assert one("RestrictAddressFamilies") == "AF_UNIX"
    assert one("PrivateNetwork") == "yes"
    assert one("IPAddressDeny") == "any"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "read-only"  # music may live in a home folder: read, not write
