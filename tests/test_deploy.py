"""deploy/install.sh on this machine: the dry run shows the Pi install and changes nothing, a
32-bit Raspberry Pi OS is refused, the shell scripts are shellcheck-clean, and the shipped
example config and device pins are usable."""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
SYSTEM_PATHS = ("/opt/rescnn-appliance", "/etc/rescnn-appliance", "/usr/share/rescnn-appliance",
                "/etc/systemd/system/rescnn-appliance.service", "/srv/music")


def install(*args: str, env: dict[str, str] | None = None, user: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
    cmd = [str(INSTALL), *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RESCNN_")}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60, check=False)


def pi(**extra: str) -> dict[str, str]:
    return {"RESCNN_ARCH": "aarch64", "RESCNN_LONG_BIT": "64", **extra}


def system_state() -> dict[str, object]:
    return {"paths": {p: os.path.lexists(p) for p in SYSTEM_PATHS},
            "users": {u.pw_name for u in pwd.getpwall()}, "groups": {g.gr_name for g in grp.getgrall()}}


def actions(out: str) -> list[str]:
    return [line[2:] for line in out.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_the_whole_pi_install_and_changes_nothing(tmp_path: Path) -> None:
    before = system_state()
    result = install("--dry-run", env=pi())
    assert result.returncode == 0, result.stderr
    steps = actions(result.stdout)
    joined = "\n".join(steps)
    assert "python3 -m venv --system-site-packages /opt/rescnn-appliance/venv" in joined
    assert f"-r {REPO}/deploy/requirements-pi.txt" in joined
    assert "usermod --append --groups video,audio,gpio,i2c rescnn" in joined
    assert f"{REPO}/systemd/rescnn-appliance.service /etc/systemd/system/rescnn-appliance.service" in joined
    assert "systemctl enable rescnn-appliance.service" in joined
    assert steps[-1].endswith("/opt/rescnn-appliance/venv/bin/rescnn-appliance doctor")
    if "rescnn" not in before["users"]:  # type: ignore[operator]
        assert any(s.startswith("useradd --system") and s.endswith(" rescnn") for s in steps)
    assert system_state() == before


def test_dry_run_into_a_prefix_keeps_an_existing_config_and_venv(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "rescnn-appliance" / "appliance.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[library]\nfolders = ["/home/me/Music"]\n')
    python = tmp_path / "opt" / "rescnn-appliance" / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    result = install("--dry-run", env=pi(RESCNN_PREFIX=str(tmp_path)))

    assert result.returncode == 0, result.stderr
    assert f"config {config}: present, kept" in result.stdout
    joined = "\n".join(actions(result.stdout))
    assert "appliance.toml.example" not in joined
    assert "-m venv" not in joined
    assert f"{python} -m pip install" in joined
    assert config.read_text() == '[library]\nfolders = ["/home/me/Music"]\n'
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == listing


def test_dry_run_installs_the_models_where_the_package_finds_them(tmp_path: Path) -> None:
    for name in ("ecnn.json", "ecnn_fp32.pt", "va.json", "va_int8.pt", "ecnn.md"):
        (tmp_path / name).write_text("x")
    result = install("--dry-run", env=pi(RESCNN_MODELS_SRC=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    copy = [s for s in actions(result.stdout) if s.endswith(" /usr/share/rescnn-appliance/models/")]
    assert len(copy) == 1
    assert all(str(tmp_path / n) in copy[0] for n in ("ecnn.json", "ecnn_fp32.pt", "va.json", "va_int8.pt"))


def test_missing_models_are_named_before_anything_is_done(tmp_path: Path) -> None:
    result = install("--dry-run", env=pi(RESCNN_MODELS_SRC=str(tmp_path)))
    assert result.returncode == 0
    assert f"{tmp_path} has no ecnn.json and va.json" in result.stderr
    assert "models/" not in "\n".join(actions(result.stdout))


@pytest.mark.parametrize("arch,long_bit", [("armv7l", "32"), ("armv6l", "32"), ("aarch64", "32")])
def test_a_32_bit_raspberry_pi_os_is_refused(arch: str, long_bit: str) -> None:
    result = install("--dry-run", env={"RESCNN_ARCH": arch, "RESCNN_LONG_BIT": long_bit})
    assert result.returncode == 1
    assert "32-bit" in result.stderr and "Raspberry Pi OS (64-bit)" in result.stderr
    assert "PyTorch" in result.stderr
    assert actions(result.stdout) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser")
def test_a_real_run_on_a_pc_stops_before_touching_anything() -> None:
    # As nobody, so that even a broken platform check could not install anything.
    result = install(user="nobody", env={"RESCNN_ARCH": "x86_64", "RESCNN_LONG_BIT": "64"})
    assert result.returncode == 1
    assert "not x86_64" in result.stderr and "make install" in result.stderr


def test_install_refuses_unknown_arguments() -> None:
    result = install("--dryrun", env=pi())
    assert result.returncode == 2
    assert "unknown argument '--dryrun'" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_deploy_scripts_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in (REPO / "deploy").glob("*.sh"))
    assert {Path(s).name for s in scripts} >= {"install.sh", "arm-check.sh"}
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_example_config_is_a_valid_system_config() -> None:
    from rescnn_appliance.config import load_settings

    settings = load_settings(REPO / "deploy" / "appliance.toml.example", required=True)
    assert settings.library.folders == ["/srv/music"]
    assert (settings.buttons.like_pin, settings.buttons.skip_pin) == (17, 27)


def pinned() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO / "deploy" / "requirements-pi.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements-pi.txt: '{line}' is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_the_pi_pins_satisfy_every_dependency_the_package_declares() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = pinned()
    assert pins["torch"] == "2.9.1"
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    pi_env = {"platform_machine": "aarch64", "sys_platform": "linux", "python_version": "3.11"}
    for line in cfg["options"]["install_requires"].strip().splitlines():
        req = Requirement(line.strip())
        if req.marker is not None and not req.marker.evaluate(pi_env):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"setup.cfg needs {req}, requirements-pi.txt does not pin it"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {req}"
