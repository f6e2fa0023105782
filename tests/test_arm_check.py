"""The aarch64 check: the shipped models, K-means and audio decoding on an emulated Cortex-A53
with the Pi's torch. Runs only from the cache ``make arm-check`` builds (never downloads);
skipped, with the reason, when the emulator, the cached root or the models are not there."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("ARM_CHECK_CACHE", REPO / ".cache" / "arm64"))
MODELS = REPO / "models"
REQUIREMENTS = REPO / "deploy" / "requirements-pi.txt"

sys.path.insert(0, str(REPO / "deploy"))
import arm_check

needs_models = pytest.mark.skipif(
    not ((MODELS / "ecnn.json").is_file() and (MODELS / "va.json").is_file()),
    reason="models/ has no ecnn.json and va.json yet (make models)")


def emulator_missing() -> str:
    if shutil.which("qemu-aarch64-static") is None:
        return "qemu-aarch64-static not installed (apt-get install qemu-user-static)"
    if not (CACHE / "root" / ".arm-check-root").is_file():
        return f"no cached arm64 root in {CACHE}/root: run `make arm-check` once"
    stamp = CACHE / "site" / ".requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        return f"aarch64 wheels in {CACHE}/site are missing or older than requirements-pi.txt: run `make arm-check`"
    return ""


def test_fixed_faces_are_identical_on_every_call_and_differ_from_each_other() -> None:
    faces = arm_check.fixed_faces()
    assert faces.dtype == np.uint8 and faces.shape == (arm_check.N_FACES, 48, 48)
    assert np.array_equal(faces, arm_check.fixed_faces())
    assert len({f.tobytes() for f in faces}) == len(faces)
    assert all(int(f.max()) - int(f.min()) > 100 for f in faces)


def fake_wheel_install(site: Path, name: str, version: str, files: list[str]) -> None:
    """What ``pip install --target`` leaves: the files, and a dist-info whose RECORD lists them."""
    info = f"{name}-{version}.dist-info"
    for rel in files + [f"{info}/METADATA"]:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    record = files + [f"{info}/METADATA", f"{info}/RECORD", f"../../../bin/{name}-tool"]
    (site / info / "RECORD").write_text("".join(f"{rel},sha256=x,1\n" for rel in record))


def test_a_changed_pin_swaps_only_that_wheel_in_the_cached_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_wheel_install(site, "torch", "2.10.0", ["torch/__init__.py", "torch/lib/libtorch_cpu.so",
                                                  "functorch/__init__.py", "__pycache__/isympy.cpython-311.pyc"])
    fake_wheel_install(site, "sympy", "1.14.0", ["sympy/__init__.py", "isympy.py", "__pycache__/x.cpython-311.pyc"])
    fake_wheel_install(site, "typing_extensions", "4.16.0", ["typing_extensions.py"])
    requirements = tmp_path / "requirements-pi.txt"
    requirements.write_text("# comment\ntorch==2.9.1\nsympy==1.14.0\nnumpy==2.4.6  # new\n")

    todo = arm_check.prune_site(site, requirements)

    assert todo == ["torch==2.9.1", "numpy==2.4.6"]
    left = sorted(str(f.relative_to(site)) for f in site.rglob("*"))
    assert left == ["__pycache__", "__pycache__/x.cpython-311.pyc", "isympy.py", "sympy",
                    "sympy-1.14.0.dist-info", "sympy-1.14.0.dist-info/METADATA",
                    "sympy-1.14.0.dist-info/RECORD", "sympy/__init__.py"]
    assert arm_check.prune_site(site, requirements) == ["torch==2.9.1", "numpy==2.4.6"]


def test_the_pi_torch_is_read_from_the_pins() -> None:
    pins = dict(line.split("==") for line in REQUIREMENTS.read_text().splitlines()
                if line.startswith("torch=="))
    assert arm_check.pinned_torch() == pins["torch"] == "2.9.1"


@needs_models
def test_the_check_fails_and_names_an_output_that_differs_from_the_reference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert arm_check.main(["reference", "--models", str(MODELS), "--out", str(tmp_path)]) == 0
    ref = dict(np.load(tmp_path / "reference.npz"))
    ref["int8_valence"] = ref["int8_valence"] + 0.1
    np.savez(tmp_path / "reference.npz", **ref)

    status = arm_check.main(["check", "--models", str(MODELS), "--reference", str(tmp_path)])

    out = capsys.readouterr().out
    lines = {line.split(" max ")[0].strip(): line for line in out.splitlines() if " max |diff| " in line}
    assert status == 1
    assert lines["int8 valence"].endswith("FAIL")
    assert lines["fp32 probs"].endswith("ok") and lines["int8 probs"].endswith("ok")
    assert "int8 valence: max |diff| 0.1" in out.splitlines()[-1]


@pytest.mark.skipif(not (CACHE / "wheels").is_dir(), reason=f"no cached aarch64 wheels in {CACHE}/wheels")
def test_the_pinned_aarch64_wheels_need_nothing_beyond_the_pins() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    env = {"platform_machine": "aarch64", "platform_system": "Linux", "sys_platform": "linux",
           "python_version": "3.11", "python_full_version": "3.11.2", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    wheels = {}  # the cache may also hold wheels of earlier pins: take the pinned version's
    for w in (CACHE / "wheels").glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(w.name)
        if str(version) == pins.get(canonicalize_name(name)):
            wheels[canonicalize_name(name)] = w
    missing_wheels = sorted(set(pins) - set(wheels))
    if missing_wheels:
        pytest.skip(f"wheel cache incomplete ({', '.join(missing_wheels)}): run `make arm-check`")
    problems = []
    for name, wheel in wheels.items():
        if name not in pins:
            continue
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            lines = zf.read(meta).decode().splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            if dep not in pins:
                problems.append(f"{name} needs {req}, not pinned")
            elif not req.specifier.contains(pins[dep], prereleases=True):
                problems.append(f"{name} needs {req}, pinned {pins[dep]}")
    assert problems == []


@pytest.mark.slow
@needs_models
@pytest.mark.skipif(bool(emulator_missing()), reason=emulator_missing() or "ready")
def test_shipped_models_give_the_same_outputs_on_an_emulated_cortex_a53() -> None:
    result = subprocess.run([str(REPO / "deploy" / "arm-check.sh"), "--offline"], capture_output=True,
                            text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "emulated: aarch64" in result.stdout and f"torch {arm_check.pinned_torch()}+cpu" in result.stdout
    assert "arm check passed" in result.stdout
