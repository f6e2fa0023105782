"""Privacy of emotion readings on a real SQLite file: store_readings levels, retention, and
``users remove`` taking the listener's whole history with it."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from rescnn_appliance.cli import main
from rescnn_appliance.music.db import Feedback, Track, utcnow
from rescnn_appliance.music.library import Library

READING = {"valence": 0.42, "arousal": -0.31, "mood": "calm"}


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _library(path: Path, level: str) -> tuple[Library, int]:
    lib = Library.open(path, store_readings=level)
    if not lib.users():
        lib.add_user("ana")
        lib.add_user("ben")
        with lib.session() as s:
            s.add(Track(path="/m/a.flac", title="a", status="ok", valence=0.1, arousal=0.2))
    return lib, lib.track("/m/a.flac").id


@pytest.mark.parametrize("level, expected", [
    ("off", (None, None, None)), ("coarse", (None, None, "calm")),
    ("full", (0.42, -0.31, "calm"))])
def test_feedback_keeps_only_what_store_readings_allows(tmp_path: Path, level: str,
                                                        expected: tuple) -> None:
    lib, tid = _library(tmp_path / "lib.sqlite", level)
    lib.record_feedback("ana", tid, "like", **READING)
    lib.close()
    assert _rows(tmp_path / "lib.sqlite", "select kind, valence, arousal, mood from feedback") \
        == [("like", *expected)]


def test_an_unknown_level_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="privacy.store_readings 'some'"):
        Library.open(tmp_path / "lib.sqlite", store_readings="some")


def test_old_readings_are_erased_but_the_likes_stay(tmp_path: Path) -> None:
    db = tmp_path / "lib.sqlite"
    lib, tid = _library(db, "full")
    lib.record_feedback("ana", tid, "like", **READING)
    lib.record_feedback("ana", tid, "skip", **READING)
    now = utcnow()
    with lib.session() as s:  # the like was given 40 days ago
        s.query(Feedback).filter(Feedback.kind == "like").update({"at": now - timedelta(days=40)})
    old, fresh = (now - timedelta(days=40)).isoformat(), (now - timedelta(days=1)).isoformat()
    lib.set_state("recent_readings", [{"at": old, "user": "ana", "mood": "sad", "valence": -0.5},
                                      {"at": fresh, "user": "ana", "mood": "calm",
                                       "emotion": "neutral", "valence": 0.4}])
    changed = lib.apply_reading_policy(retention_days=30, now=now)
    assert changed == {"feedback": 1, "state": 1}
    assert _rows(db, "select kind, valence, arousal, mood from feedback order by id") == [
        ("like", None, None, None), ("skip", 0.42, -0.31, "calm")]
    assert [r["mood"] for r in lib.get_state("recent_readings")] == ["calm"]
    assert lib.apply_reading_policy(retention_days=30, now=now) == {"feedback": 0, "state": 0}
    lib.close()


def test_lowering_the_level_erases_what_a_higher_one_kept(tmp_path: Path) -> None:
    db = tmp_path / "lib.sqlite"
    lib, tid = _library(db, "full")
    lib.record_feedback("ana", tid, "like", **READING)
    at = utcnow().isoformat()
    lib.set_state("recent_readings", [{"at": at, "user": "ana", "mood": "calm",
                                       "emotion": "neutral", "valence": 0.4, "arousal": -0.3}])
    lib.set_state("mood", {"at": at, "mood": "calm", "valence": 0.4, "arousal": -0.3,
                           "target": "calm"})
    lib.close()

    lib, _ = _library(db, "coarse")
    lib.apply_reading_policy(retention_days=30)
    assert _rows(db, "select valence, arousal, mood from feedback") == [(None, None, "calm")]
    assert lib.get_state("recent_readings") == [{"at": at, "user": "ana", "mood": "calm"}]
    assert lib.get_state("mood") == {"at": at, "mood": "calm", "target": "calm"}
    lib.close()

    lib, _ = _library(db, "off")
    lib.apply_reading_policy(retention_days=30)
    assert _rows(db, "select kind, valence, arousal, mood from feedback") == [
        ("like", None, None, None)]
    assert lib.get_state("recent_readings") == [] and lib.get_state("mood") is None
    lib.close()


def test_users_remove_deletes_that_listeners_history(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "lib.sqlite"
    lib, tid = _library(db, "full")
    for user in ("ana", "ben"):
        lib.record_feedback(user, tid, "like", **READING)
        lib.record_play(user, tid, ended_how="complete")
    at = utcnow().isoformat()
    lib.set_state("recent_readings", [{"at": at, "user": "ana", "mood": "calm"},
                                      {"at": at, "user": "ben", "mood": "sad"}])
    lib.set_state("last_track", {"track_id": tid, "path": "/m/a.flac", "user": "ana",
                                 "reason": "calm; you liked this track"})
    lib.close()

    assert main(["--set", f'library.database="{db}"', "users", "remove", "ana"]) == 0
    assert "removed ana and their history" in capsys.readouterr().out
    assert _rows(db, "select u.name from feedback f join users u on u.id = f.user_id") \
        == [("ben",)]
    assert _rows(db, "select u.name from plays p join users u on u.id = p.user_id") == [("ben",)]
    assert _rows(db, "select count(*) from feedback where user_id not in (select id from users)"
                 ) == [(0,)]
    lib = Library.open(db)
    assert lib.get_state("recent_readings") == [{"at": at, "user": "ben", "mood": "sad"}]
    assert lib.get_state("last_track") is None
    lib.close()


def test_status_shows_a_coarse_mood_without_numbers(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "lib.sqlite"
    lib, _ = _library(db, "coarse")
    lib.set_state("mood", {"at": utcnow().isoformat(), "mood": "calm", "target": "calm"})
    lib.set_state("recent_readings", [{"at": "2026-11-25T10:00:00", "user": "ana",
                                       "mood": "calm"}])
    lib.close()
    assert main(["--set", f'library.database="{db}"', "status"]) == 0
    out = capsys.readouterr().out
    assert "mood     calm\n" in out and "valence" not in out
    assert "2026-11-25T10:00:00  calm" in out
