"""The whole appliance with real parts: FER faces from a folder, the shipped models, VLC with
--aout=dummy playing generated clips, gpiozero MockFactory buttons, a real NOTIFY_SOCKET and the
SQLite file on disk."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from rescnn_appliance.cli import main
from rescnn_appliance.config import EX_CONFIG, load_settings
from rescnn_appliance.demo import CLIPS, demo_library

REPO = Path(__file__).resolve().parent.parent
MODELS = load_settings(None).models_dir
needs_models = pytest.mark.skipif(
    not (MODELS / "ecnn.json").is_file(),
    reason=f"shipped models not found in {MODELS} (models/ecnn.json): train and export them first")
HAPPY = 3


def write_fer_faces(shared_data: Path, folder: Path, label: int = HAPPY, count: int = 8) -> Path:
    """FER2013 val faces of one class, upscaled into 640x480 frames, as PNGs in ``folder``."""
    data = np.load(shared_data / "fer2013" / "fer2013_trainval.npz")
    keep = data["exact_val"] & (data["y_val"] == label)
    folder.mkdir(parents=True)
    for i, face in enumerate(data["x_val"][keep][:count]):
        frame = np.full((480, 640), 128, np.uint8)
        frame[120:360, 200:440] = cv2.resize(face, (240, 240), interpolation=cv2.INTER_CUBIC)
        assert cv2.imwrite(str(folder / f"face{i:02d}.png"), frame)
    return folder


class NotifyListener:
    """A bound datagram socket standing in for systemd; collects every message it hears."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop:
            try:
                self.lines.extend(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout} s; heard {self.lines[-10:]}")

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        self.sock.close()


def wait_until(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture()
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    listener = NotifyListener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield listener
    listener.close()


class Running:
    """An Appliance started with ``overrides`` and its loop on a thread; stops on exit."""

    def __init__(self, tmp_path: Path, models: Path, music: Path, pins=None, scan: bool = True,
                 **overrides) -> None:
        from rescnn_appliance.appliance import Appliance
        from rescnn_appliance.music.library import Library

        base = {"camera.source": "demo", "player.aout": "dummy", "playback.fade_s": 0.1,
                "library.folders": [str(music)], "service.state_dir": str(tmp_path / "state"),
                "models.dir": str(models), "buttons.enabled": pins is not None,
                "library.scan_on_start": False}
        self.settings = load_settings(None, {**base, **overrides})
        self.db = self.settings.database_path
        if scan:
            lib = Library.open(self.db)  # scanned here, in this process: quick and settled
            lib.scan([music], progress=False, workers=1)
            lib.close()
        self.app = Appliance(self.settings, pin_factory=pins)
        self.loop = threading.Thread(target=self.app.run, daemon=True)

    def __enter__(self):
        self.app.start()
        self.loop.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.request_stop("test over")
        self.loop.join(15)
        self.app.close()
        assert not self.loop.is_alive()


@needs_models
def test_faces_music_buttons_and_systemd_end_to_end(tmp_path: Path, shared_data: Path,
                                                    notify: NotifyListener) -> None:
    from gpiozero.pins.mock import MockFactory

    from rescnn_appliance.appliance import Appliance

    faces = write_fer_faces(shared_data, tmp_path / "faces")
    music = demo_library(tmp_path / "clips", seconds=3.0)
    state = tmp_path / "state"
    settings = load_settings(None, {
        "camera.source": "folder", "camera.path": str(faces), "camera.fps": 8.0,
        "mood.window_s": 2.0, "mood.hold_s": 0.5, "mood.confidence_floor": 0.0,
        "player.aout": "dummy", "playback.fade_s": 0.1, "library.folders": [str(music)],
        "service.state_dir": str(state), "privacy.store_readings": "full",
        "models.dir": str(MODELS)})
    pins = MockFactory()
    app = Appliance(settings, pin_factory=pins)
    app.start()
    loop = threading.Thread(target=app.run, daemon=True)
    loop.start()
    db = settings.database_path
    try:
        assert notify.wait_for("READY=1", 5) == "READY=1"
        first = wait_until("the first track", lambda: app.now_playing, 120)
        wait_until("a mood from the faces", lambda: app.tracker.state.mood, 30)
        assert app.tracker.state.emotion is not None and app.sensing.faces_found > 0
        notify.wait_for("STATUS=user=owner mood=", 10)
        notify.wait_for("WATCHDOG=1", 5)

        like, skip = pins.pin(settings.buttons.like_pin), pins.pin(settings.buttons.skip_pin)
        like.drive_low(); like.drive_high()
        liked = wait_until("the like row", lambda: rows(
            db, "select track_id, valence, mood from feedback where kind='like'"), 5)
        assert liked[0][0] == app.now_playing.track_id or liked[0][0] == first.track_id
        assert liked[0][1] is not None and liked[0][2] is not None

        led = pins.pin(settings.buttons.led_pin)
        flashes = len(led.states)
        # The database is locked by another writer: the like waits in memory, the LED still
        # acknowledges it, and it reaches the file once the lock is gone.
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("begin exclusive")
        time.sleep(0.2)
        like.drive_low(); like.drive_high()
        wait_until("the queued like", lambda: app.pending, 15)
        assert len(led.states) > flashes
        blocker.rollback()
        blocker.close()
        wait_until("the queued like written", lambda: len(rows(
            db, "select 1 from feedback where kind='like'")) == 2 and not app.pending, 10)

        # 3 s clips: one plays to its end and is recorded as complete.
        wait_until("a complete play", lambda: rows(
            db, "select 1 from plays where ended_how='complete'"), 30)
        # Skip right after a track starts, so it is the skip (not the clip's end) that ends it.
        before = app.now_playing
        fresh = wait_until("a fresh track", lambda: app.now_playing is not None
                           and app.now_playing is not before and app.now_playing, 10)
        skip.drive_low(); time.sleep(0.05); skip.drive_high()
        wait_until("the skip row", lambda: rows(db, "select 1 from feedback where kind='skip'"), 5)
        wait_until("the next track after skip", lambda: app.now_playing is not None
                   and app.now_playing is not fresh, 10)
        assert rows(db, f"select 1 from plays where ended_how='skip' and track_id={fresh.track_id}")
    finally:
        app.request_stop("test over")
        loop.join(10)
        app.close()
    assert not loop.is_alive()
    notify.wait_for("STOPPING=1", 2)
    assert rows(db, "select value from app_state where key='active_user'") == [('"owner"',)]
    assert rows(db, "select count(*) from tracks where status='ok'")[0][0] == len(CLIPS)
    last = rows(db, "select value from app_state where key='last_track'")[0][0]

    # A restart resumes the user, the volume and the last track.
    again = Appliance(settings, pin_factory=MockFactory())
    again.start()
    try:
        assert again.user == "owner" and again.player.volume == settings.player.volume
        assert again.now_playing is not None and again.now_playing.path in last
        assert again.now_playing.reason == "resumed after restart"
    finally:
        again.close()


@needs_models
def test_with_store_readings_off_no_emotion_reaches_the_database(
        tmp_path: Path, shared_data: Path, notify: NotifyListener) -> None:
    from gpiozero.pins.mock import MockFactory

    faces = write_fer_faces(shared_data, tmp_path / "faces")
    music = demo_library(tmp_path / "clips", seconds=20.0)
    overrides = {"camera.source": "folder", "camera.path": str(faces), "camera.fps": 8.0,
                 "mood.window_s": 2.0, "mood.hold_s": 0.5, "mood.confidence_floor": 0.0,
                 "privacy.store_readings": "off"}
    pins = MockFactory()
    with Running(tmp_path, MODELS, music, pins, **overrides) as run:
        app, db = run.app, run.db
        wait_until("the first track", lambda: app.now_playing, 120)
        wait_until("a mood from the faces", lambda: app.tracker.state.mood, 30)
        like = pins.pin(run.settings.buttons.like_pin)
        like.drive_low(); like.drive_high()
        wait_until("the like row", lambda: rows(db, "select 1 from feedback"), 5)
    assert app.tracker.state.mood is not None  # it did read the faces...
    assert rows(db, "select kind, valence, arousal, mood from feedback") == [
        ("like", None, None, None)]  # ...and kept none of it
    keys = {k for (k,) in rows(db, "select key from app_state")}
    assert "last_track" in keys and not keys & {"recent_readings", "mood"}


@needs_models
def test_a_track_vlc_cannot_play_is_marked_and_the_next_starts_within_2_s(
        tmp_path: Path, notify: NotifyListener) -> None:
    music = demo_library(tmp_path / "clips", seconds=3.0)
    with Running(tmp_path, MODELS, music) as run:
        app, db = run.app, run.db
        first = wait_until("the first track", lambda: app.now_playing, 120)
        for clip in music.glob("*.flac"):  # all but the playing clip vanish
            if str(clip) != first.path:
                clip.unlink()
        failed = wait_until("a failed play followed by another", lambda: rows(db, (
            "select p.started_at, (select min(q.started_at) from plays q where q.id > p.id), "
            "t.status, t.error from plays p join tracks t on t.id = p.track_id "
            "where p.ended_how = 'error' and exists (select 1 from plays q where q.id > p.id)")),
            30)
        started, next_started, status, error = failed[0]
        gap = (datetime.fromisoformat(next_started) - datetime.fromisoformat(started))
        assert gap.total_seconds() <= 2.0
        assert status == "error" and "not found" in error


@needs_models
def test_a_track_vlc_ends_at_once_is_marked_as_failed_not_as_played(
        tmp_path: Path, notify: NotifyListener) -> None:
    """VLC reports an undecodable file as played to its end, at once: the scanned duration
    that comes with the choice tells the appliance it failed."""
    music = demo_library(tmp_path / "clips", seconds=3.0)
    with Running(tmp_path, MODELS, music) as run:
        app, db = run.app, run.db
        first = wait_until("the first track", lambda: app.now_playing, 120)
        assert first.duration_s and first.duration_s > 2.5
        for clip in music.glob("*.flac"):  # the others turn to garbage under the same name
            if str(clip) != first.path:
                clip.write_bytes(b"fLaC" + np.random.default_rng(0).bytes(20000))
        failed = wait_until("a track that ended at once marked as failed", lambda: rows(db, (
            "select t.status, t.error, p.ended_how from plays p join tracks t "
            "on t.id = p.track_id where t.error like 'playback: ended at once%'")), 30)
        assert failed[0] == ("error", "playback: ended at once: not decodable", "error")
        assert not rows(db, "select 1 from plays p join tracks t on t.id = p.track_id "
                            "where t.status = 'error' and p.ended_how = 'complete'")


def _run_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "rescnn_appliance", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_models
def test_sigterm_stops_cleanly_with_exit_0(tmp_path: Path, notify: NotifyListener) -> None:
    state = tmp_path / "state"
    demo_library(state)  # as `run` would write it; kept out of the timed part
    proc = _run_cli(["--set", f'models.dir="{MODELS}"', "--set", f'service.state_dir="{state}"', "--set", "library.folders=[]",
                     "run", "--source", "demo", "--aout", "dummy", "--no-buttons"],
                    {"WATCHDOG_PID": ""})
    try:
        notify.wait_for("READY=1", 120)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopping: SIGTERM" in err
    notify.wait_for("STOPPING=1", 2)


@needs_models
def test_duration_stops_with_exit_0_and_a_missing_camera_is_one_clear_line(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], notify: NotifyListener) -> None:
    missing = tmp_path / "no-such-camera-folder"
    music = demo_library(tmp_path / "clips", seconds=3.0)
    code = main(["--set", f'models.dir="{MODELS}"',
                 "--set", f'service.state_dir="{tmp_path / "state"}"', "run", "--duration", "3",
                 "--source", str(missing), "--music", str(music), "--aout", "dummy",
                 "--no-buttons"])
    assert code == 0
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "camera unavailable" in line]
    assert lines and str(missing) in lines[0] and "no such file" in lines[0]
    assert "music goes on" in lines[0]
    notify.wait_for("STATUS=user=owner mood=- track=", 2)
    assert any("camera unavailable" in line for line in notify.lines if line.startswith("STATUS="))


def test_a_missing_model_is_one_clear_line_and_exit_78(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    code = main(["--set", f'models.dir="{empty}"', "--set",
                 f'service.state_dir="{tmp_path / "state"}"', "run", "--duration", "1",
                 "--source", "demo", "--aout", "dummy", "--no-buttons"])
    assert code == EX_CONFIG
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("rescnn")]
    assert err == [f"rescnn-appliance: {empty / 'ecnn.json'}: model card not found"]


def test_a_bad_config_is_one_clear_line_and_exit_78(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text("[playback]\nabsent_action = \"sleep\"\n")
    assert main(["--config", str(cfg), "run", "--duration", "1"]) == EX_CONFIG
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and str(cfg) in err and "playback.absent_action" in err


def test_doctor_names_what_is_broken_and_how_to_fix_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    code = main(["--set", f'models.dir="{empty}"', "--set",
                 f'service.state_dir="{tmp_path / "state"}"', "--set",
                 f'camera.path="{tmp_path / "none"}"', "--set", 'camera.source="folder"',
                 "doctor", "--skip", "audio"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  models:" in out and "FAIL  camera:" in out and "ok    database:" in out
    assert out.count("fix:") >= 2
