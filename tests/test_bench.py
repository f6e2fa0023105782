"""Bench mode on real parts: a replay folder, real TorchScript models, a real SQLite library.

Sensors and meters are read under a temporary root: an empty ``sys`` (no hwmon, no thermal zone,
no firmware) beside the live ``/proc``, so the bench must fall back to the CPU-load power estimate
and say so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rescnn_appliance.cli import main
from tests.reliability_support import models_for_faults

REPO = Path(__file__).resolve().parent.parent
PARTS = ("faces", "preprocess", "ecnn", "va", "mood", "track")
STAGES = ("capture", *PARTS, "reading", "end_to_end", "end_to_end_cpu")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped models when present, else real untrained nets exported to TorchScript."""
    return models_for_faults(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 640x480 frames of scikit-image's astronaut, her face drifting, as PNG files."""
    from skimage import data

    folder = tmp_path_factory.mktemp("replay")
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (400, 400))
    for i in range(4):
        frame = np.full((480, 640), 140, np.uint8)
        x = 60 + 30 * i
        frame[40:440, x:x + 400] = face
        cv2.imwrite(str(folder / f"frame{i:02d}.png"), frame)
    return folder


@pytest.fixture
def empty_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sys" / "class").mkdir(parents=True)
    (root / "proc").symlink_to("/proc")
    return root


def _bench_args(models: Path, out: Path, root: Path, *extra: str) -> list[str]:
    return ["bench", "--models", str(models), "--out", str(out), "--root", str(root),
            "--vcgencmd", "", "--warmup", "1", "--library-tracks", "30", *extra]


def _read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _check_stats(stats: dict) -> None:
    assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"] < 60_000
    assert stats["n"] >= 1


def test_replay_run_writes_every_file_with_sane_numbers(
        models: Path, replay: Path, empty_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    assert main(_bench_args(models, out, empty_root, "--source", str(replay),
                            "--frames", "6")) == 0
    (run_dir,) = list(out.iterdir())
    for name in ("log.jsonl", "summary.json", "summary.csv", "latency_hist.png", "timeline.png"):
        assert (run_dir / name).stat().st_size > 0, name
    for name in ("latency_hist.png", "timeline.png"):
        assert (run_dir / name).read_bytes()[:8] == PNG

    log = _read_log(run_dir)
    assert log[0]["type"] == "run" and "image folder" in log[0]["source"]
    frames = [r for r in log if r["type"] == "frame"]
    seconds = [r for r in log if r["type"] == "second"]
    assert len(frames) == 6
    with_face = [f for f in frames if f["face"]]
    assert with_face, "the astronaut's face was never found"
    for f in with_face:
        parts = sum(f[f"{s}_ms"] for s in PARTS)
        assert f["end_to_end_ms"] == pytest.approx(parts, rel=0.05, abs=0.05)
        # frame to reading: everything up to the smoothed mood, not the track choice
        assert f["reading_ms"] == pytest.approx(parts - f["track_ms"], rel=0.05, abs=0.05)
        assert 0 < f["end_to_end_cpu_ms"] <= f["end_to_end_ms"] * 1.05 + 0.5

    summary = json.loads((run_dir / "summary.json").read_text())
    (group,) = summary["groups"]
    assert group["variant"] == "int8/1t" and group["frames"] == 6 and group["fps"] > 0
    for stage in STAGES:
        _check_stats(group["stages"][stage])
    system = group["system"]
    assert 10 < system["rss_mb_max"] < 8000
    assert system["temp_c_max"] is None and system["freq_mhz_mean"] is None  # empty sysfs
    # No meter under the root: the load estimate, marked and named, within the board model.
    assert system["power_estimated"] is True
    assert system["power_source"].startswith("estimate from CPU load: Raspberry Pi 3 Model B")
    assert 1.4 <= system["power_w_mean"] <= 3.7
    assert system["energy_per_frame_j"] > 0
    assert seconds and all(s["power_estimated"] and s["power_w"] >= 1.4 for s in seconds)

    csv_rows = (run_dir / "summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("variant,precision,threads,condition,stage")
    assert len(csv_rows) == 1 + len(STAGES)

    table = capsys.readouterr().out
    assert "end_to_end" in table and "p99" in table and "(estimated)" in table
    assert "no previous run on this board" in table

    # A second run on the same board reports the change against the first.
    time.sleep(1.1)  # run folders are named by the second
    assert main(_bench_args(models, out, empty_root, "--source", str(replay),
                            "--frames", "3", "--no-plots")) == 0
    second = json.loads((max(out.iterdir()) / "summary.json").read_text())
    assert second["previous"]["run"] == run_dir.name
    measures = {c["measure"] for c in second["previous"]["changes"]}
    assert {"end_to_end p50 ms", "fps"} <= measures
    assert "change against the previous run on this board" in capsys.readouterr().out


def test_sigint_still_writes_the_summary(models: Path, replay: Path, empty_root: Path,
                                         tmp_path: Path) -> None:
    out = tmp_path / "bench"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rescnn_appliance",
         *_bench_args(models, out, empty_root, "--source", str(replay), "--frames", "1000000",
                      "--no-plots")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list(out.glob("*/log.jsonl"))
            if logs and logs[0].read_text().count('"type":"frame"') >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    (run_dir,) = list(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True
    (group,) = summary["groups"]
    frames = [r for r in _read_log(run_dir) if r["type"] == "frame"]
    assert group["frames"] == len(frames) >= 3
    _check_stats(group["stages"]["end_to_end"])
    assert "(interrupted)" in stdout


def test_labelled_set_gives_accuracy_and_confusion_per_condition(
        models: Path, empty_root: Path, tmp_path: Path, shared_data: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with np.load(shared_data / "fer2013" / "fer2013_trainval.npz") as fer:
        x, y = fer["x_val"], fer["y_val"]
    pick = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(7)])
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x_val=x[pick], y_val=y[pick])

    out = tmp_path / "bench"
    assert main(_bench_args(models, out, empty_root, "--npz", str(tiny))) == 0
    (run_dir,) = list(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    groups = {g["condition"]: g for g in summary["groups"]}
    assert list(groups) == ["clean", "gaussian", "impulse", "illumination"]
    for g in groups.values():
        assert g["frames"] == g["faces"] == 21
        matrix = np.array(g["confusion"])
        assert matrix.shape == (7, 7) and matrix.sum() == 21
        assert matrix.sum(1).tolist() == [3] * 7  # three faces of each true class
        assert g["accuracy"]["accuracy"] == pytest.approx(np.trace(matrix) / 21)
        assert 0 <= g["accuracy"]["macro_f1"] <= 1
        assert "capture" not in g["stages"] and "faces" not in g["stages"]
        _check_stats(g["stages"]["end_to_end"])
    assert (run_dir / "confusion_int8-1t.png").read_bytes()[:8] == PNG
    frames = [r for r in _read_log(run_dir) if r["type"] == "frame"]
    assert len(frames) == 84 and all(0 <= r["label"] <= 6 and 0 <= r["pred"] <= 6 for r in frames)
    table = capsys.readouterr().out
    for condition in groups:
        assert condition in table
    assert "accuracy" in table and "macro-F1" in table


def test_unusable_npz_and_missing_models_are_one_line_each(
        models: Path, empty_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "faces.npz"
    np.savez(bad, images=np.zeros((2, 48, 48), np.uint8))
    assert main(_bench_args(models, tmp_path / "o", empty_root, "--npz", str(bad))) == 78
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("rescnn-app")]
    assert str(bad) in line and "no faces and labels" in line

    empty = tmp_path / "no-models"
    empty.mkdir()
    assert main(_bench_args(empty, tmp_path / "o", empty_root, "--source", "demo",
                            "--frames", "2")) == 78
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("rescnn-app")]
    assert "ecnn.json: model card not found" in line and line.endswith(f"(models.dir = {empty})")
    assert not any((tmp_path / "o").iterdir())  # nothing measured: no run folder left
