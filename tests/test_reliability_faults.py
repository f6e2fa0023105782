"""Faults through the real appliance: VLC --aout=dummy playing generated clips, gpiozero
MockFactory buttons, a real NOTIFY_SOCKET, the SQLite file on disk, an image-folder camera.

Extends tests/test_appliance_e2e.py (a vanished track, a like queued behind an in-process lock,
a camera missing from the start) with: a corrupt track, a lock held by another *process* with
several presses, a camera that goes away and comes back, and power loss during a migration.
The models are exported here (untrained weights): faults do not need accurate models.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rescnn_appliance.config import load_settings
from rescnn_appliance.demo import demo_library
from rescnn_appliance.music.backup import Backup, restore
from tests.reliability_support import (
    HEAD,
    NEXT_REVISION,
    LockHolder,
    export_models,
    kill_half_way,
    library_with_history,
    next_release,
    open_with,
    write_demo_faces,
)
from tests.test_appliance_e2e import NotifyListener, Running, rows, wait_until

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_models(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    listener = NotifyListener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    yield listener
    listener.close()


def test_a_corrupt_track_is_marked_and_the_next_starts_within_2_s(
        tmp_path: Path, models: Path, notify: NotifyListener,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rescnn_appliance")
    music = demo_library(tmp_path / "clips", seconds=3.0)
    with Running(tmp_path, models, music) as run:
        first = wait_until("the first track", lambda: run.app.now_playing, 120)
        # Scanned as good, then damaged: the bytes after the FLAC header are garbage.
        for clip in music.glob("*.flac"):
            if str(clip) != first.path:
                data = clip.read_bytes()
                clip.write_bytes(data[:64] + bytes(range(256)) * (len(data) // 256))
        wait_until("a good track again after the failures", lambda: rows(run.db, (
            "select 1 from plays p where p.ended_how = 'error' and exists (select 1 from plays "
            "q where q.id > p.id and q.ended_how = 'complete')")), 30)
        # and the music goes on (checked over 2 s: between two tracks nothing is playing)
        wait_until("a track playing", lambda: run.app.now_playing, 2)
    failed = rows(run.db, "select t.status, t.error from plays p join tracks t "
                          "on t.id = p.track_id where p.ended_how = 'error'")
    assert len(failed) >= 1
    for status, error in failed:
        assert status == "error" and error.startswith("playback:")
    # from each "cannot play" line to the next "playing" line
    records = [r for r in caplog.records if r.name == "rescnn_appliance"]
    gaps = [next(n.created for n in records[i:] if n.getMessage().startswith("playing "))
            - r.created for i, r in enumerate(records) if "cannot play" in r.getMessage()]
    assert len(gaps) == len(failed) and max(gaps) <= 2.0, gaps
    print(f"{len(gaps)} corrupt tracks marked; next track started after at most "
          f"{max(gaps):.2f} s")
    assert rows(run.db, f"select status from tracks where id = {first.track_id}") == [("ok",)]


def test_presses_while_another_process_locks_the_database_are_all_written_later(
        tmp_path: Path, models: Path, notify: NotifyListener) -> None:
    from gpiozero.pins.mock import MockFactory

    music = demo_library(tmp_path / "clips", seconds=30.0)
    pins = MockFactory()
    with Running(tmp_path, models, music, pins) as run:
        wait_until("the first track", lambda: run.app.now_playing, 120)
        like = pins.pin(run.settings.buttons.like_pin)
        led = pins.pin(run.settings.buttons.led_pin)
        with LockHolder(run.db):
            acks = len(led.states)
            pressed = time.monotonic()
            for _ in range(3):
                like.drive_low(); time.sleep(0.1); like.drive_high(); time.sleep(0.3)
            # every press is acknowledged (the LED flashes) and waits in memory
            wait_until("3 queued likes", lambda: len(queued(run.app, "feedback")) == 3, 60)
            queued_s = time.monotonic() - pressed
            assert len(led.states) >= acks + 3 * 2
            assert rows(run.db, "select count(*) from feedback") == [(0,)]
            assert run.loop.is_alive() and run.app.now_playing is not None
            time.sleep(1.5)
            released = datetime.now(UTC).replace(tzinfo=None)
        wait_until("the queued likes written", lambda: not run.app.pending, 15)
    assert rows(run.db, "select kind, count(*) from feedback group by kind") == [("like", 3)]
    # each row keeps the time of its press, not the time the lock let it be written
    pressed_at = [datetime.fromisoformat(at) for (at,) in rows(run.db, "select at from feedback")]
    assert all(at < released - timedelta(seconds=1) for at in pressed_at), (pressed_at, released)
    assert not (run.settings.state_dir / "pending-feedback.json").exists()
    # The loop must not sit on the lock: 3 presses in 1.2 s are all acknowledged within 2 s
    # (it took about 60 s while the loop's writes waited out the 5 s busy timeout; 1d051b4).
    assert queued_s <= 2.0, f"3 presses acknowledged only after {queued_s:.1f} s"
    print(f"3 presses under another process's lock: all acknowledged and queued "
          f"{queued_s:.2f} s after the first, all 3 written once the lock went")


def add_user(db: Path, name: str) -> None:
    from rescnn_appliance.music.library import Library

    lib = Library.open(db)
    lib.add_user(name)
    lib.close()


def queued(app, record: str) -> list:
    """What ``app`` holds in memory for the database: ``feedback`` or ``play`` records."""
    from rescnn_appliance.appliance import PendingFeedback, PendingPlay

    cls = PendingFeedback if record == "feedback" else PendingPlay
    return [item for item in app.pending if isinstance(item, cls)]


def test_plays_that_end_while_another_process_locks_the_database_are_written_later(
        tmp_path: Path, models: Path, notify: NotifyListener) -> None:
    from gpiozero.pins.mock import MockFactory

    music = demo_library(tmp_path / "clips", seconds=2.0)
    pins = MockFactory()
    with Running(tmp_path, models, music, pins) as run:
        wait_until("the first track", lambda: run.app.now_playing, 120)
        wait_until("a first play in the file", lambda: rows(run.db, "select 1 from plays"), 30)
        skip = pins.pin(run.settings.buttons.skip_pin)
        with LockHolder(run.db):
            plays_before = rows(run.db, "select count(*) from plays")[0][0]
            locked_at = time.monotonic()
            # tracks end by themselves (2 s clips) and by a skip press while the file is locked
            skip.drive_low(); time.sleep(0.1); skip.drive_high()
            wait_until("3 plays waiting", lambda: len(queued(run.app, "play")) >= 3, 60)
            waiting = list(queued(run.app, "play"))
            assert rows(run.db, "select count(*) from plays")[0][0] == plays_before
            assert run.loop.is_alive()
            wait_until("a track playing", lambda: run.app.now_playing, 2)  # music goes on
            locked_s = time.monotonic() - locked_at
        wait_until("the queued plays written", lambda: not run.app.pending, 15)
        written = rows(run.db, f"select t.path, p.ended_how, p.started_at from plays p join "
                               f"tracks t on t.id = p.track_id order by p.id "
                               f"limit -1 offset {plays_before}")
    # every play that ended under the lock is in the file, in order, with its own start time
    assert [(w[0], w[1]) for w in written[:len(waiting)]] == [
        (rows(run.db, f"select path from tracks where id = {p.track_id}")[0][0], p.ended_how)
        for p in waiting]
    assert [datetime.fromisoformat(w[2]) for w in written[:len(waiting)]] == [
        datetime.fromisoformat(p.started_at) for p in waiting]
    assert "skip" in [p.ended_how for p in waiting]
    assert not (run.settings.state_dir / "pending-feedback.json").exists()
    print(f"{len(waiting)} plays ended during {locked_s:.1f} s of another process's lock: "
          f"queued, the music went on, all written in order once the lock went")


def test_plays_and_feedback_still_queued_at_exit_survive_a_restart(
        tmp_path: Path, models: Path, notify: NotifyListener) -> None:
    from gpiozero.pins.mock import MockFactory

    music = demo_library(tmp_path / "clips", seconds=30.0)
    pins = MockFactory()
    run = Running(tmp_path, models, music, pins)
    add_user(run.db, "owner")
    with LockHolder(run.db):
        with run:
            wait_until("the first track", lambda: run.app.now_playing, 120)
            like = pins.pin(run.settings.buttons.like_pin)
            like.drive_low(); time.sleep(0.1); like.drive_high()
            wait_until("the queued like", lambda: queued(run.app, "feedback"), 30)
        # stopped under the lock: the like and the play ("stopped") wait in the state folder
        assert (run.settings.state_dir / "pending-feedback.json").exists()
        assert rows(run.db, "select count(*) from feedback") == [(0,)]
    again = Running(tmp_path, models, music, MockFactory(), scan=False)
    with again:
        wait_until("the records from the last run written", lambda: not again.app.pending, 30)
    assert rows(run.db, "select kind from feedback") == [("like",)]
    assert ("stopped",) in rows(run.db, "select ended_how from plays")
    assert not (run.settings.state_dir / "pending-feedback.json").exists()


def test_a_like_pressed_when_the_database_was_locked_from_the_start_is_kept(
        tmp_path: Path, models: Path, notify: NotifyListener) -> None:
    """No user yet and the file locked at start: the default user cannot be made, yet the
    acknowledged like waits for it instead of being dropped as "no user"."""
    from gpiozero.pins.mock import MockFactory

    music = demo_library(tmp_path / "clips", seconds=30.0)
    pins = MockFactory()
    run = Running(tmp_path, models, music, pins)
    with LockHolder(run.db) as lock, run:
        wait_until("the first track", lambda: run.app.now_playing, 120)
        assert run.app.user is None
        like = pins.pin(run.settings.buttons.like_pin)
        like.drive_low(); time.sleep(0.1); like.drive_high()
        wait_until("the queued like", lambda: queued(run.app, "feedback"), 30)
        lock.release()
        wait_until("the like written", lambda: not run.app.pending, 15)
        assert run.app.user == "owner"
    assert rows(run.db, "select u.name, f.kind from feedback f join users u "
                        "on u.id = f.user_id") == [("owner", "like")]


class FullDisk:
    """The database's disk fills up, then space returns, for real, in one of two ways.

    ``sqlite_limit``: SQLite's own ``PRAGMA max_page_count`` on every connection the appliance
    takes, set to the file's size now: the next write that needs a page fails with
    ``SQLITE_FULL`` (works everywhere). ``tmpfs``: the state folder is a 4 MiB tmpfs filled to the
    last byte by a file (needs root and mount; skipped with the reason elsewhere).
    """

    def __init__(self, how: str, state_dir: Path) -> None:
        self.how, self.state_dir = how, state_dir
        self.limit: int | None = None
        self.filler = state_dir / "filler"

    def mount(self) -> None:
        if self.how != "tmpfs":
            return
        self.state_dir.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                               str(self.state_dir)], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"a real full disk needs a tmpfs mount, refused here: "
                        f"{done.stderr.strip() or done.returncode} (the sqlite_limit case runs)")

    def unmount(self) -> None:
        if self.how == "tmpfs":
            subprocess.run(["umount", "-l", str(self.state_dir)], check=False)

    def fill(self, app) -> None:
        if self.how == "tmpfs":
            with open(self.filler, "wb", buffering=0) as out:
                for size in (65536, 4096, 512, 1):  # to the last block
                    try:
                        while out.write(b"\0" * size):
                            pass
                    except OSError:
                        pass
            return
        from sqlalchemy import event

        with app.lib.engine.connect() as conn:
            self.limit = conn.exec_driver_sql("PRAGMA page_count").scalar()

        @event.listens_for(app.lib.engine, "checkout")
        def _limit(dbapi_conn, _record, _proxy) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA max_page_count = {self.limit or 1073741823}")
            cur.close()

    def free(self) -> None:
        if self.how == "tmpfs":
            self.filler.unlink()
        else:
            self.limit = None


@pytest.mark.parametrize("how", ["sqlite_limit", "tmpfs"])
def test_presses_while_the_disk_is_full_wait_in_memory_and_are_written_when_space_returns(
        how: str, tmp_path: Path, models: Path, notify: NotifyListener,
        caplog: pytest.LogCaptureFixture) -> None:
    from gpiozero.pins.mock import MockFactory

    caplog.set_level(logging.INFO, logger="rescnn_appliance")
    music = demo_library(tmp_path / "clips", seconds=60.0)
    disk = FullDisk(how, tmp_path / "state")
    disk.mount()
    pins = MockFactory()
    try:
        with Running(tmp_path, models, music, pins) as run:
            first = wait_until("the first track", lambda: run.app.now_playing, 120)
            like = pins.pin(run.settings.buttons.like_pin)
            disk.fill(run.app)
            presses = 0
            # the disk is full when the next write needs space: press until one is queued
            while len(queued(run.app, "feedback")) < 3 and presses < 300:
                like.drive_low(); time.sleep(0.06); like.drive_high(); time.sleep(0.06)
                presses += 1
            wait_until("the last press handled", lambda: acknowledged(caplog) == presses, 10)
            waiting = len(queued(run.app, "feedback"))
            assert waiting >= 3, f"{presses} presses and the disk never filled"
            position = run.app.player.position_s
            time.sleep(1.5)
            # the music goes on: the same track, further on; the loop alive
            assert run.loop.is_alive() and run.app.now_playing is first
            assert run.app.player.position_s > position
            in_file = rows(run.db, "select count(*) from feedback")[0][0]
            assert in_file + waiting == presses
            disk.free()
            wait_until("the queued likes written", lambda: not run.app.pending, 15)
            assert rows(run.db, "select count(*) from feedback where kind = 'like'") == [
                (presses,)]
            assert rows(run.db, "pragma integrity_check") == [("ok",)]
    finally:
        disk.unmount()
    print(f"disk full ({how}): {presses} likes pressed and acknowledged, {waiting} waited in "
          f"memory while the music played on, all {presses} in the file once space returned")


def acknowledged(caplog: pytest.LogCaptureFixture, word: str = "like") -> int:
    """Presses the appliance acknowledged with its log line (``like: <title>``)."""
    return sum(1 for r in caplog.records
               if r.name == "rescnn_appliance" and r.getMessage().startswith(f"{word}: "))


def test_camera_goes_away_and_comes_back_while_the_music_goes_on(
        tmp_path: Path, models: Path, notify: NotifyListener) -> None:
    faces = write_demo_faces(tmp_path / "camera")
    away = tmp_path / "camera-away"
    music = demo_library(tmp_path / "clips", seconds=30.0)
    with Running(tmp_path, models, music, **{"camera.source": "folder",
                                             "camera.path": str(faces)}) as run:
        wait_until("frames", lambda: run.app.sensing.frames >= 3, 60)
        playing = wait_until("the first track", lambda: run.app.now_playing, 120)
        faces.rename(away)
        notify.wait_for("STATUS=user=owner mood=", 5)
        lost = wait_until("the camera reported lost", lambda: [
            line for line in notify.lines if "camera unavailable" in line], 20)
        assert str(faces) in lost[-1]
        time.sleep(3.0)  # the retries back off meanwhile
        frames_away = run.app.sensing.frames
        position = run.app.player.position_s
        away.rename(faces)
        back_at = time.monotonic()
        wait_until("readings again", lambda: run.app.sensing.frames > frames_away + 2, 10)
        resumed_s = time.monotonic() - back_at
        wait_until("STATUS without the camera problem", lambda: not run.app.camera_problem, 5)
        assert run.app.now_playing is playing  # the same track played on throughout
        assert run.app.player.position_s > position
    statuses = [line for line in notify.lines if line.startswith("STATUS=")]
    problem = next(i for i, line in enumerate(statuses) if "camera unavailable" in line)
    assert any("camera" not in line for line in statuses[problem + 1:])
    print(f"readings resumed {resumed_s:.1f} s after the camera came back")


# --- power loss during a schema migration ------------------------------------------------

def test_power_loss_during_a_migration_the_copy_restores_the_library(tmp_path: Path) -> None:
    db = tmp_path / "state" / "library.sqlite"
    library_with_history(db)
    release = next_release(tmp_path)

    kill_half_way(release, db)
    backups = sorted(db.parent.glob(f"library.sqlite.bak-{HEAD}-*"))
    assert len(backups) == 1, sorted(p.name for p in db.parent.iterdir())
    with sqlite3.connect(backups[0]) as copy:
        assert copy.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert copy.execute("select count(*) from feedback").fetchall() == [(3,)]

    # Worse than a killed process: the file itself is damaged by the power loss.
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.truncate(size // 3)
    damaged = open_with(release, db)
    out = damaged.communicate(timeout=120)[0].strip()
    assert damaged.returncode == 1 and out.startswith("ERROR ") and str(db) in out, out
    assert "\n" not in out  # one clear line naming the file, no traceback

    restore(db, Backup.from_path(backups[0]))  # what `library restore` does
    restored = open_with(release, db)
    out = restored.communicate(timeout=120)[0].strip()
    assert restored.returncode == 0, out
    assert out.splitlines()[-1] == f"REV {NEXT_REVISION} ['ana', 'ben'] 3"


def test_a_migration_killed_half_way_is_rolled_back_and_redone_on_the_next_start(
        tmp_path: Path) -> None:
    # Failed while pysqlite autocommitted DDL (fixed in 2e4eaf5): the migration's first table
    # was kept while alembic_version stayed 0001, and every later start stopped on
    # "table ratings already exists".
    db = tmp_path / "state" / "library.sqlite"
    library_with_history(db)
    release = next_release(tmp_path)
    kill_half_way(release, db)
    with sqlite3.connect(db) as conn:
        tables = {t for (t,) in conn.execute("select name from sqlite_master where type='table'")}
    again = open_with(release, db)
    out = again.communicate(timeout=120)[0].strip()
    assert again.returncode == 0 and out.splitlines()[-1] == f"REV {NEXT_REVISION} ['ana', 'ben'] 3", (
        f"after a kill mid-migration: {out!r}; tables left: {sorted(tables)}")


def test_after_a_long_camera_outage_readings_resume_within_10_s_at_the_default_back_off(
        tmp_path: Path) -> None:
    # Failed while camera.retry_max_s defaulted to 30 (21 s here); the default is now 8 s.
    # Real folder source; only the clock is the test's.
    from rescnn_appliance.vision.frames import ImageFolderSource, ReconnectingSource

    faces = write_demo_faces(tmp_path / "camera", count=1)
    away = tmp_path / "away"
    retry_max_s = load_settings(None).camera.retry_max_s
    worst, now = 0.0, [0.0]
    for outage_s in (20.0, 45.0, 60.0, 100.0):
        now[0] = 0.0
        source = ReconnectingSource(lambda: ImageFolderSource(faces, loop=True), retry_max_s,
                                    clock=lambda: now[0]).open()
        assert source.read() is not None
        faces.rename(away)
        while now[0] < outage_s:  # the worker reads at idle_fps (1 a second) meanwhile
            source.read()
            now[0] += 1.0
        away.rename(faces)
        back = now[0]
        while source.read() is None:
            now[0] += 1.0
        worst = max(worst, now[0] - back)
        source.close()
    assert worst <= 10.0, (f"camera.retry_max_s = {retry_max_s:g}: readings resumed "
                           f"{worst:.0f} s after the camera came back")
