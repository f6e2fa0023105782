"""PlaybackPolicy: when the music follows the listener, and when it waits."""

from __future__ import annotations

from rescnn_appliance.config import load_settings
from rescnn_appliance.playback import PlaybackPolicy


def test_next_track_when_one_ends() -> None:
    policy = PlaybackPolicy()
    policy.track_started(0.0, "calm")
    assert policy.on_track_end(200.0).kind == "play_next"


def test_mood_change_waits_for_track_end_by_default() -> None:
    policy = PlaybackPolicy(change_mid_track=False, cooldown_s=0)
    policy.track_started(0.0, "calm")
    assert policy.on_mood("happy", 5.0, 5.0).kind == "none"
    assert policy.target_mood == "happy"  # the next track is chosen for it


def test_mood_change_fades_early_when_configured() -> None:
    policy = PlaybackPolicy(change_mid_track=True, cooldown_s=0)
    policy.track_started(0.0, "calm")
    action = policy.on_mood("sad", 5.0, 5.0)
    assert action.kind == "fade_next" and "calm -> sad" in action.reason
    # Repeated updates with the same mood do not fade again.
    assert policy.on_mood("sad", 6.0, 6.0).kind == "none"


def test_cooldown_delays_a_second_change() -> None:
    policy = PlaybackPolicy(change_mid_track=True, cooldown_s=60)
    policy.track_started(0.0, "calm")
    assert policy.on_mood("sad", 5.0, 5.0).kind == "fade_next"
    policy.track_started(7.0, "sad")
    assert policy.on_mood("happy", 20.0, 20.0).kind == "none"   # inside the cooldown
    assert policy.target_mood == "sad" and policy.pending_mood == "happy"
    assert policy.on_tick(40.0, 40.0).kind == "none"
    action = policy.on_tick(66.0, 66.0)
    assert action.kind == "fade_next" and policy.target_mood == "happy"


def test_mood_back_to_target_cancels_pending_change() -> None:
    policy = PlaybackPolicy(change_mid_track=False, cooldown_s=60)
    policy.track_started(0.0, "calm")
    policy.on_mood("sad", 1.0, 1.0)
    policy.on_mood("happy", 2.0, 2.0)
    policy.on_mood("sad", 3.0, 3.0)
    assert policy.pending_mood is None and policy.target_mood == "sad"


def test_absent_pause_then_resume_when_face_is_back() -> None:
    policy = PlaybackPolicy(absent_after_s=300, absent_action="pause")
    policy.track_started(0.0, "calm")
    assert policy.on_tick(10.0, 200.0).kind == "none"
    action = policy.on_tick(10.0, 311.0)
    assert action.kind == "pause" and "301 s" in action.reason
    assert policy.on_track_end(320.0).kind == "none"   # paused: no next track
    assert policy.on_mood("calm", 330.0, 330.0).kind == "resume"


def test_absent_keep_plays_on() -> None:
    policy = PlaybackPolicy(absent_after_s=300, absent_action="keep")
    policy.track_started(0.0, "calm")
    assert policy.on_tick(10.0, 5000.0).kind == "none"
    assert policy.on_track_end(5001.0).kind == "play_next"
    assert policy.target_mood == "calm"


def test_from_settings() -> None:
    s = load_settings(None, {"playback.absent_action": "pause", "playback.cooldown_s": 5.0})
    policy = PlaybackPolicy.from_settings(s.playback)
    assert policy.absent_action == "pause" and policy.cooldown_s == 5.0
