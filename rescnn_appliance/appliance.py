"""The appliance: one event loop that wires camera, models, mood, library, player and buttons.

Threads only *produce* events; the loop in :meth:`Appliance.run` is the only code that touches
domain state, so nothing here needs a lock:

- the sensing worker (:class:`rescnn_appliance.sensing.SensingWorker`) reads frames, finds faces,
  runs the models and puts :class:`FaceSeen` / :class:`CameraChanged` events on the queue; with
  nobody in view it slows to ``camera.idle_fps``;
- VLC's event thread puts :class:`~rescnn_appliance.devices.player.PlayerEvent` (end, error,
  skipped); gpiozero's threads put :class:`ButtonPressed`; a thread waiting for the library
  scan (a child process, :mod:`rescnn_appliance.music.scan_job`) puts :class:`ScanFinished`;
  a signal handler or ``--duration`` asks the loop to stop.

Feedback from a button, and the play of each track (how it ended), is written to SQLite at once;
when the database is locked or the disk is full it waits in memory (and, at exit, in
``pending-feedback.json`` in the state folder) and is retried every tick, in order, so nothing
acknowledged is lost. The systemd watchdog is petted only when the
loop ticks and the sensing worker has reported recently.

Example::

    >>> from rescnn_appliance.config import load_settings
    >>> settings = load_settings(None, {"camera.source": "demo", "player.aout": "dummy"})
    >>> app = Appliance(settings)          # doctest: +SKIP
    >>> app.start()                        # models, database, player, buttons; READY=1
    >>> app.run(duration=30.0)             # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rescnn_appliance.config import Settings
from rescnn_appliance.mood import MOODS
from rescnn_appliance.music import readings
from rescnn_appliance.playback import Action, PlaybackPolicy
from rescnn_appliance.tracking import MoodState, MoodTracker
from rescnn_appliance.vision.affect import AffectReading

log = logging.getLogger("rescnn_appliance")

DEFAULT_USER = "owner"
PENDING_FILE = "pending-feedback.json"
SAVE_POSITION_S = 10.0        # how often the resume position is written while playing
READINGS_KEPT = 20            # recent readings kept for `status`
WORKER_STALL_S = 15.0         # sensing silent this long: stop petting the watchdog
ENDED_AT_ONCE_S = 1.0         # an "end" this soon after start, for a longer track, is a failure
ERRORS_BEFORE_WAIT = 10       # failed tracks in a row before the next try waits for a tick
PRUNE_EVERY_S = 24 * 3600.0   # readings past privacy.retention_days are erased this often
LOCKED_WAIT_S = 0.05          # a write the database refuses (another process's lock) is queued
                              # after this, not waited for: the loop must keep answering buttons


@dataclass(frozen=True)
class FaceSeen:
    """A frame was analysed at ``t``: ``reading`` is None when it had no face."""

    t: float
    reading: AffectReading | None


@dataclass(frozen=True)
class CameraChanged:
    """The camera came up (``ok``) or went away; ``message`` says what happened."""

    ok: bool
    message: str


@dataclass(frozen=True)
class ButtonPressed:
    """``word`` is like, skip, never or user; ``t`` when the press arrived (monotonic)."""

    word: str
    t: float


@dataclass(frozen=True)
class ScanFinished:
    ok: bool
    message: str


@dataclass(frozen=True)
class WorkerFailed:
    message: str


@dataclass
class PendingFeedback:
    """A press not yet in the database; ``at`` is when it was pressed (ISO, UTC; empty in files
    written before it was kept, which then get the time they are written)."""

    user: str
    track_id: int
    kind: str
    valence: float | None
    arousal: float | None
    mood: str | None
    at: str = ""


@dataclass
class PendingPlay:
    """A play (how a track ended) not yet in the database; ``started_at`` in ISO form (UTC).

    Example::

        >>> PendingPlay(user="ana", track_id=3, started_at="2026-01-01T10:00:00",
        ...             ended_how="complete").ended_how
        'complete'
    """

    user: str | None
    track_id: int
    started_at: str
    ended_how: str


Pending = PendingFeedback | PendingPlay


@dataclass
class NowPlaying:
    track_id: int
    path: str
    title: str
    artist: str
    mood: str
    reason: str
    started_at: datetime
    user: str | None
    started_mono: float = 0.0
    start_s: float = 0.0
    duration_s: float | None = None


class Appliance:
    """The daemon behind ``rescnn-appliance run``; see the module docstring.

    ``music_folders`` overrides ``library.folders`` (``run`` passes the demo library when the
    configured folders hold no audio). ``pin_factory`` is handed to gpiozero (tests pass a
    ``MockFactory``; None lets gpiozero choose). ``on_line`` gets the live one-line summary
    whenever it changes (``run`` prints it when stderr is a terminal).

    Example::

        >>> app = Appliance(settings, buttons=False)   # doctest: +SKIP
        >>> app.start(); app.run(duration=5.0); app.close()   # doctest: +SKIP
    """

    def __init__(self, settings: Settings, *, music_folders: list[Path] | None = None,
                 buttons: bool = True, pin_factory: Any = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.music_folders = music_folders if music_folders is not None else settings.music_folders
        self.use_buttons = buttons and settings.buttons.enabled
        self.pin_factory = pin_factory
        self.on_line = on_line
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()  # put() is signal-safe
        self.tracker = MoodTracker.from_settings(settings.mood)
        self.policy = PlaybackPolicy.from_settings(settings.playback)
        self.pending: list[Pending] = []  # feedback and plays waiting for the database, in order
        self.now_playing: NowPlaying | None = None
        self.user: str | None = None
        self.camera_problem = ""
        self.scan_done = False
        self.started_t = time.monotonic()
        self.ready_s: float | None = None
        self._stop_reason: str | None = None
        self._status = ""
        self._line = ""
        self._last_position_save = 0.0
        self._last_readings_save = 0.0
        self._last_prune = 0.0
        self._readings: list[dict[str, Any]] = []
        self._errors_in_row = 0
        self.lib: Any = None
        self.recommender: Any = None
        self.player: Any = None
        self.buttons: Any = None
        self.led: Any = None
        self.sensing: Any = None
        self.notifier: Any = None
        self._scan_thread: threading.Thread | None = None
        self._scan_job: Any = None

    # --- start and stop ------------------------------------------------------------------

    def start(self) -> None:
        """Bring up models, database, player, buttons and sensing, then send READY=1.

        Raises ``ModelError`` (missing or altered model), ``MigrationError``/``DatabaseBusy``
        (database), ``PlayerUnavailable`` (libVLC) with a one-line message.
        """
        from rescnn_appliance.devices.player import limit_native_memory
        from rescnn_appliance.devices.service import ServiceNotifier
        from rescnn_appliance.music.library import Library
        from rescnn_appliance.music.recommend import Recommender
        from rescnn_appliance.sensing import SensingWorker
        from rescnn_appliance.vision.affect import AffectModel

        s = self.settings
        # before the models' and VLC's threads exist; see devices/player.py (soak RSS steps)
        log.debug("malloc: %s", ", ".join(limit_native_memory()) or "as the environment says")
        self.notifier = ServiceNotifier()
        self.notifier.status("starting: loading models")
        model = AffectModel.load(s.models_dir, s.models.precision, s.models.threads)
        self.lib = Library.open(s.database_path, store_readings=s.privacy.store_readings,
                                busy_timeout_s=LOCKED_WAIT_S)
        self._prune_readings()
        self.tracker.mood_of = self.lib.mood_model().mood_of
        self.recommender = Recommender(self.lib, s.recommend, s.playback)
        self._load_pending()
        self.player = _open_player(s, self.events.put)
        self._restore_user_and_volume()
        if self.use_buttons:
            self._open_buttons()
        self.sensing = SensingWorker(s, model, self.events.put)
        self.sensing.start()
        self._start_scan()
        self._resume_track()
        self.ready_s = time.monotonic() - self.started_t
        self.notifier.ready(self._status_text())
        log.info("ready in %.2f s (user %s, %d pending feedback)", self.ready_s, self.user,
                 len(self.pending))

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop; safe from a signal handler or another thread."""
        self._stop_reason = reason
        self.events.put(None)  # wakes the loop at once

    def close(self) -> None:
        """Stop the threads, save resume state and pending feedback, free the devices."""
        if self.notifier is not None:
            self.notifier.stopping(f"stopping: {self._stop_reason or 'closed'}")
        if self.sensing is not None:
            self.sensing.stop()
        if self.lib is not None and self.player is not None:
            self._save_position(force=True)
            if self.now_playing is not None:
                self._record_play("stopped")
        self._retry_pending()
        self._save_pending()
        for device in (self.buttons, self.led, self.player):
            if device is not None:
                try:
                    device.close()
                except Exception as exc:  # noqa: BLE001 - closing must go on for the rest
                    log.warning("closing %s: %s", type(device).__name__, exc)
        if self._scan_job is not None:
            self._scan_job.stop()  # what it stored stays; the next start resumes the scan
        if self._scan_thread is not None:
            self._scan_thread.join(timeout=1.0)
        if self.lib is not None:
            self.lib.close()
        self.buttons = self.led = self.player = self.sensing = None

    # --- the loop ------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> int:
        """Take events in order until stopped or ``duration`` seconds have passed; returns 0."""
        deadline = None if not duration else time.monotonic() + duration
        ping = self.notifier.ping_every_s if self.settings.service.watchdog else None
        tick_s = min(1.0, ping / 2) if ping else 1.0
        next_tick = time.monotonic()
        while self._stop_reason is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._stop_reason = f"--duration {duration:g} s reached"
                break
            wait = max(0.0, min(next_tick, deadline or next_tick) - now)
            try:
                event = self.events.get(timeout=wait)
            except queue.Empty:
                event = None
            if event is not None:
                self._handle(event)
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick = now + tick_s
        log.info("stopping: %s", self._stop_reason)
        return 0

    def _handle(self, event: Any) -> None:
        from rescnn_appliance.devices.player import PlayerEvent

        if isinstance(event, FaceSeen):
            self._face_seen(event)
        elif isinstance(event, ButtonPressed):
            self._button(event)
        elif isinstance(event, PlayerEvent):
            self._player_event(event)
        elif isinstance(event, CameraChanged):
            self._camera_changed(event)
        elif isinstance(event, ScanFinished):
            self._scan_finished(event)
        elif isinstance(event, WorkerFailed):
            log.error("sensing stopped: %s", event.message)
            self.camera_problem = f"sensing stopped: {event.message}"
            self._update_status()

    def _tick(self, now: float) -> None:
        self._do(self.policy.on_tick(self._face_seen_t(), now))
        if self.now_playing is None and self.scan_done and not self.policy.paused_for_absence:
            self._play_next("nothing playing", from_tick=True)  # after a busy DB or failures
        if self.user is None:
            self._restore_user()  # the database was busy at start: the default user comes now
        if self.pending:
            self._retry_pending()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._prune_readings()
        self._save_position()
        if self.notifier.active and self.settings.service.watchdog and self.notifier.watchdog_due():
            if self.sensing is not None and now - self.sensing.beat < WORKER_STALL_S:
                self.notifier.watchdog()
            else:
                log.warning("sensing worker silent for %.0f s: watchdog not petted",
                            now - (self.sensing.beat if self.sensing else self.started_t))
        self._update_status()

    # --- sensing -------------------------------------------------------------------------

    def _face_seen_t(self) -> float:
        last = self.tracker.state.last_face_t
        return self.started_t if last is None else last

    def _face_seen(self, event: FaceSeen) -> None:
        before = self.tracker.state
        state = (self.tracker.add(event.reading) if event.reading is not None
                 else self.tracker.no_face(event.t))
        if self.led is not None and state.face_in_view != before.face_in_view:
            self.led.face_in_view(state.face_in_view)
        if state.changed:
            log.info("mood %s -> %s", state.previous or "none", state.mood,
                     extra=self._fields(state))
            self._remember_reading(state, force=True)
        elif event.reading is not None:
            self._remember_reading(state)
        self._do(self.policy.on_mood(state.mood, self._face_seen_t(), time.monotonic()))
        if self.now_playing is None and self.scan_done and not self.policy.paused_for_absence:
            self._play_next("first mood")

    def _camera_changed(self, event: CameraChanged) -> None:
        if event.ok:
            if self.camera_problem:
                log.info("camera back: %s", event.message)
            self.camera_problem = ""
        else:
            log.error("camera unavailable, music goes on, retrying: %s", event.message)
            self.camera_problem = f"camera unavailable: {event.message}"
        self._update_status()

    def _remember_reading(self, state: MoodState, force: bool = False) -> None:
        level = self.settings.privacy.store_readings
        if level == "off" or state.mood is None:
            return
        now = time.monotonic()
        if not force and now - self._last_readings_save < 30.0:
            return
        self._last_readings_save = now
        entry: dict[str, Any] = {"at": _utc_text(), "user": self.user, "mood": state.mood,
                                 "emotion": state.emotion, "valence": round(state.valence, 3),
                                 "arousal": round(state.arousal, 3)}
        self._readings = (self._readings + [readings.redact_entry(level, entry)])[-READINGS_KEPT:]
        self._set_state(readings.READINGS_KEY, self._readings)

    def _prune_readings(self) -> None:
        """Erase readings past ``privacy.retention_days`` or above ``store_readings``."""
        self._last_prune = time.monotonic()
        try:
            changed = self.lib.apply_reading_policy(self.settings.privacy.retention_days)
            kept = self.lib.get_state(readings.READINGS_KEY)
        except Exception as exc:  # noqa: BLE001 - a busy database: the next prune catches up
            log.warning("readings not pruned yet: %s", _one_line(exc))
            self._last_prune -= PRUNE_EVERY_S - 60.0  # try again in a minute
            return
        self._readings = kept if isinstance(kept, list) else []
        if any(changed.values()):
            log.info("privacy: erased readings (%d feedback updates, %d state entries)",
                     changed["feedback"], changed["state"])

    # --- buttons -------------------------------------------------------------------------

    def _open_buttons(self) -> None:
        from rescnn_appliance.devices.buttons import Buttons, StatusLed

        def pressed(word: str) -> None:
            self.events.put(ButtonPressed(word, time.monotonic()))

        try:
            with warnings.catch_warnings():  # one line below says it all, not one per library
                warnings.simplefilter("ignore")
                self.buttons = Buttons.from_settings(self.settings, pressed, self.pin_factory)
                self.led = StatusLed.from_settings(self.settings, self.pin_factory)
        except Exception as exc:  # noqa: BLE001 - gpiozero raises many kinds off a Pi
            if self.buttons is not None:
                self.buttons.close()
            self.buttons = self.led = None
            log.warning("buttons unavailable (%s: %s); run with --no-buttons to skip them",
                        type(exc).__name__, _one_line(exc))

    def _button(self, event: ButtonPressed) -> None:
        if event.word == "user":
            self._next_user()
            return
        playing = self.now_playing
        if playing is None:
            log.info("%s pressed with nothing playing: ignored", event.word)
            return
        kind = event.word
        self._feedback(kind, playing)
        if kind in ("skip", "never"):
            self._errors_in_row = 0
            self.player.skip()

    def _feedback(self, kind: str, playing: NowPlaying) -> None:
        state = self.tracker.state
        has_reading = bool(state.probs)
        # redacted here too, so pending-feedback.json never holds more than the database may
        valence, arousal, mood = readings.redact(
            self.settings.privacy.store_readings, state.valence if has_reading else None,
            state.arousal if has_reading else None, state.mood)
        item = PendingFeedback(user=self.user or DEFAULT_USER, track_id=playing.track_id,
                               kind=kind, valence=valence, arousal=arousal, mood=mood, at=_utc_text())
        stored = self._write(item)
        if not stored:
            self.pending.append(item)
        if self.led is not None:
            self.led.acknowledge()
        log.info("%s: %s%s", kind, playing.title, "" if stored else " (database busy: queued)",
                 extra={"USER": item.user, "TRACK": playing.path, "MOOD": item.mood})

    def _write(self, item: Pending) -> bool:
        """True when written (or refused for good); False when it should be retried."""
        from sqlalchemy.exc import IntegrityError

        from rescnn_appliance.music.library import UnknownTrack, UnknownUser

        what = (f"feedback {item.kind}" if isinstance(item, PendingFeedback)
                else f"play of track {item.track_id}")
        try:
            if isinstance(item, PendingFeedback):
                self.lib.record_feedback(item.user, item.track_id, item.kind, item.valence,
                                         item.arousal, item.mood,
                                         at=datetime.fromisoformat(item.at) if item.at else None)
            else:
                self.lib.record_play(item.user, item.track_id,
                                     datetime.fromisoformat(item.started_at), item.ended_how)
            return True
        except UnknownUser as exc:
            if self.user is None and item.user == DEFAULT_USER:
                log.warning("%s waits: no user yet (%s)", what, _one_line(exc))
                return False  # the default user is made once the database takes writes
            log.error("%s dropped: %s", what, _one_line(exc))
            return True
        except (UnknownTrack, IntegrityError, ValueError) as exc:
            # the track or user was removed meanwhile: there is nothing left to attach it to
            log.error("%s dropped: %s", what, _one_line(exc))
            return True
        except Exception as exc:  # noqa: BLE001 - locked database, full disk, I/O error
            log.warning("%s not written yet (%s); will retry", what, _one_line(exc))
            return False

    def _retry_pending(self) -> None:
        if self.lib is None:
            return
        written = 0
        while self.pending:  # each leaves the queue once it is in the file, never before
            if not self._write(self.pending[0]):
                break
            self.pending.pop(0)
            written += 1
        if written:
            log.info("%d queued records written, %d still waiting", written, len(self.pending))

    def _next_user(self) -> None:
        users = self._users()
        if not users:
            return
        i = (users.index(self.user) + 1) % len(users) if self.user in users else 0
        self.user = users[i]
        self._set_state("active_user", self.user)
        if self.led is not None:
            self.led.show_profile(i + 1)
        log.info("user is now %s (profile %d)", self.user, i + 1, extra={"USER": self.user})
        self._update_status()

    def _users(self) -> list[str]:
        try:
            users = self.lib.users()
            if not users:
                self.lib.add_user(DEFAULT_USER)
                users = [DEFAULT_USER]
            return users
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot read users: %s", _one_line(exc))
            return [self.user] if self.user else []

    # --- the player ----------------------------------------------------------------------

    def _player_event(self, event: Any) -> None:
        playing = self.now_playing
        if playing is None or event.path != playing.path:
            return  # a late event for a track we already left
        now = time.monotonic()
        if event.kind == "error":
            self._track_failed(playing, event.message)
            self._record_play("error")
            self.now_playing = None
            self._errors_in_row += 1
            self._do(self.policy.on_track_end(now, "failed"))
            return
        if event.kind == "end" and self._ended_at_once(playing):
            # VLC reports some undecodable files as played to the end, at once.
            self._player_event(type(event)("error", event.path, "ended at once: not decodable"))
            return
        self._errors_in_row = 0
        if event.kind == "end":
            self._record_play("complete")
            if self.user:
                self._feedback("complete", playing)
        else:
            self._record_play("skip")
        self.now_playing = None
        self._do(self.policy.on_track_end(now, "ended" if event.kind == "end" else "skipped"))

    def _ended_at_once(self, playing: NowPlaying) -> bool:
        if playing.start_s > 0 or time.monotonic() - playing.started_mono > ENDED_AT_ONCE_S:
            return False
        duration = playing.duration_s  # None (unknown): trust VLC
        return bool(duration and duration > 2 * ENDED_AT_ONCE_S)

    def _track_failed(self, playing: NowPlaying, why: str) -> None:
        from rescnn_appliance.music.library import UnknownTrack

        log.error("%s: cannot play (%s); marked and skipped", playing.path, why,
                  extra={"TRACK": playing.path})
        try:
            self.lib.mark_error(playing.track_id, f"playback: {why}")
        except UnknownTrack:
            pass  # gone from the library already: nothing to mark
        except Exception as exc:  # noqa: BLE001
            log.warning("could not mark %s: %s", playing.path, _one_line(exc))

    def _do(self, action: Action) -> None:
        if action.kind == "none":
            return
        log.info("%s: %s", action.kind.replace("_", " "), action.reason)
        if action.kind == "play_next":
            self._play_next(action.reason)
        elif action.kind == "fade_next" and self.now_playing is not None:
            self.player.skip()
        elif action.kind == "pause":
            self.player.pause()
        elif action.kind == "resume":
            if self.now_playing is None:
                self._play_next(action.reason)
            else:
                self.player.resume()
        self._update_status()

    def _play_next(self, why: str, from_tick: bool = False) -> None:
        if self._errors_in_row >= ERRORS_BEFORE_WAIT and not from_tick:
            log.error("%d tracks in a row failed to play: trying again each second",
                      self._errors_in_row)
            return
        state = self.tracker.state
        try:
            choice = self.recommender.next_track(self.user, state.valence, state.arousal)
        except Exception as exc:  # noqa: BLE001 - a busy database: try again next tick
            log.warning("cannot choose a track now: %s", _one_line(exc))
            return
        if choice is None:
            if self.scan_done and not from_tick:
                log.warning("no playable tracks in the library")
            return
        self._start_track(choice.track_id, choice.path, choice.title, choice.artist, choice.mood,
                          choice.reason, duration_s=choice.duration_s)

    def _start_track(self, track_id: int, path: str, title: str, artist: str, mood: str,
                     reason: str, start_s: float = 0.0, duration_s: float | None = None) -> None:
        self.now_playing = NowPlaying(track_id, path, title or Path(path).stem, artist or "",
                                      mood, reason, _utcnow(), self.user, time.monotonic(),
                                      start_s, duration_s)
        self.player.play(path, start_s=start_s)
        self.policy.track_started(time.monotonic(), mood)
        state = self.tracker.state
        log.info("playing %s (%s)", self.now_playing.title, reason,
                 extra={**self._fields(state), "TRACK": path})
        self._save_position(force=True)
        self._update_status()

    def _record_play(self, how: str) -> None:
        playing = self.now_playing
        if playing is None:
            return
        item = PendingPlay(playing.user, playing.track_id,
                           playing.started_at.isoformat(), how)
        if self.pending or not self._write(item):  # behind queued records: keep the order
            self.pending.append(item)

    # --- library scan --------------------------------------------------------------------

    def _start_scan(self) -> None:
        has_tracks = bool(self._count_ok_tracks())
        if not self.settings.library.scan_on_start and has_tracks:
            self.scan_done = True
            return
        from rescnn_appliance.music.scan_job import ScanJob

        # A process of its own: the scan's libraries (scikit-learn, SciPy, mutagen, ~100 MB)
        # never enter the daemon's memory. This thread only waits for it.
        try:
            self._scan_job = ScanJob.start(self.settings.database_path, self.music_folders)
        except OSError as exc:
            self.events.put(ScanFinished(False, f"cannot start the scan: {_one_line(exc)}"))
            return
        job = self._scan_job

        def wait() -> None:
            try:
                self.events.put(ScanFinished(*job.wait()))
            except Exception as exc:  # noqa: BLE001 - any failure is one line in the log
                self.events.put(ScanFinished(False, _one_line(exc)))

        self.scan_done = has_tracks  # play what is known while the scan runs
        self._scan_thread = threading.Thread(target=wait, name="library-scan", daemon=True)
        self._scan_thread.start()

    def _count_ok_tracks(self) -> int:
        try:
            return int(self.lib.stats()["by_status"].get("ok", 0))
        except Exception:  # noqa: BLE001
            return 0

    def _scan_finished(self, event: ScanFinished) -> None:
        (log.info if event.ok else log.error)("library scan: %s", event.message)
        # the recommender sees the scan's tracks by itself (Library.tracks_revision)
        self.tracker.mood_of = self.lib.mood_model().mood_of
        self.scan_done = True
        if self.now_playing is None and not self.policy.paused_for_absence:
            self._play_next("library ready")

    # --- resume --------------------------------------------------------------------------

    def _restore_user(self) -> None:
        """The saved active user, else the first; the default user is made when none exists
        (left None while the database refuses that write: the next tick tries again)."""
        users = self._users()
        try:
            saved = self.lib.get_state("active_user")
        except Exception as exc:  # noqa: BLE001 - unreadable now: the first user will do
            log.warning("cannot read the active user: %s", _one_line(exc))
            saved = None
        self.user = saved if saved in users else (users[0] if users else None)
        if self.user != saved and self.user is not None:
            self._set_state("active_user", self.user)

    def _restore_user_and_volume(self) -> None:
        self._restore_user()
        volume = self.lib.get_state("volume")
        if isinstance(volume, (int, float)):
            self.player.volume = volume
        mood = self.lib.get_state(readings.MOOD_KEY)
        if isinstance(mood, dict) and mood.get("mood") in MOODS:
            # privacy.store_readings = coarse keeps the mood only: start from its centre
            centre = self.lib.mood_model().centroids[MOODS.index(mood["mood"])]
            self.tracker.restore(mood["mood"], float(mood.get("valence", centre[0])),
                                 float(mood.get("arousal", centre[1])))

    def _resume_track(self) -> None:
        last = self.lib.get_state("last_track")
        if not isinstance(last, dict) or not last.get("path"):
            return
        if not Path(last["path"]).is_file():
            log.info("last track %s is gone: not resumed", last["path"])
            return
        self._start_track(int(last["track_id"]), last["path"], last.get("title", ""),
                          last.get("artist", ""), last.get("mood", ""),
                          "resumed after restart", float(last.get("position_s", 0.0)),
                          last.get("duration_s"))

    def _save_position(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.lib is None or (not force and now - self._last_position_save < SAVE_POSITION_S):
            return
        self._last_position_save = now
        playing = self.now_playing
        if playing is not None:
            self._set_state("last_track", {
                "track_id": playing.track_id, "path": playing.path, "title": playing.title,
                "artist": playing.artist, "mood": playing.mood, "reason": playing.reason,
                "user": playing.user, "started_at": playing.started_at.isoformat(),
                "duration_s": playing.duration_s,
                "position_s": round(self.player.position_s, 1)})
        self._set_state("volume", self.player.volume)
        state = self.tracker.state
        level = self.settings.privacy.store_readings
        if state.mood and level != "off":
            self._set_state(readings.MOOD_KEY, readings.redact_entry(level, {
                "at": _utc_text(), "mood": state.mood, "valence": round(state.valence, 3),
                "arousal": round(state.arousal, 3), "target": self.policy.target_mood}))

    def _set_state(self, key: str, value: Any) -> None:
        try:
            self.lib.set_state(key, value)
        except Exception as exc:  # noqa: BLE001 - resume state is best effort
            log.debug("state %s not saved: %s", key, exc)

    # --- pending feedback across restarts ------------------------------------------------

    def _pending_path(self) -> Path:
        return self.settings.state_dir / PENDING_FILE

    def _load_pending(self) -> None:
        path = self._pending_path()
        try:
            self.pending = [_pending_from_json(item) for item in json.loads(path.read_text())]
            path.unlink()
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError) as exc:
            log.error("%s: cannot read queued feedback (%s); left in place", path, exc)
            return
        self._retry_pending()

    def _save_pending(self) -> None:
        if not self.pending:
            return
        path = self._pending_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps([_pending_to_json(p) for p in self.pending]))
            log.warning("%d feedback/plays not yet in the database: kept in %s",
                        len(self.pending), path)
        except OSError as exc:
            log.error("%d feedback/plays lost (%s): %s", len(self.pending), exc,
                      json.dumps([_pending_to_json(p) for p in self.pending]))

    # --- status --------------------------------------------------------------------------

    def _fields(self, state: MoodState) -> dict[str, Any]:
        fields: dict[str, Any] = {"USER": self.user, "MOOD": state.mood}
        if state.probs:
            fields.update(VALENCE=state.valence, AROUSAL=state.arousal)
        return fields

    def _status_text(self) -> str:
        state = self.tracker.state
        playing = self.now_playing
        track = playing.title if playing else ("scanning library" if not self.scan_done else "-")
        if playing is not None and self.policy.paused_for_absence:
            track += " (paused: nobody in view)"
        text = f"user={self.user or '-'} mood={state.mood or '-'} track={track}"
        if self.camera_problem:
            text += f"; {self.camera_problem}"
        return text

    def live_line(self) -> str:
        """One line for a terminal: emotion, valence/arousal, mood, user, track."""
        state = self.tracker.state
        face = (f"{state.emotion:<8} V{state.valence:+.2f} A{state.arousal:+.2f}"
                if state.face_in_view and state.probs else "no face             ")
        track = self.now_playing.title if self.now_playing else "-"
        cam = " | camera unavailable" if self.camera_problem else ""
        return (f"{face} | mood {state.mood or '-':<9} | {self.user or '-'} | {track}{cam}")

    def _update_status(self) -> None:
        text = self._status_text()
        if text != self._status and self.notifier is not None:
            self._status = text
            self.notifier.status(text)
        if self.on_line is not None:
            line = self.live_line()
            if line != self._line:
                self._line = line
                self.on_line(line)


class PlayerUnavailable(Exception):
    """libVLC cannot be started; the message says how to fix it."""


def _open_player(settings: Settings, on_event: Callable[[Any], None]) -> Any:
    from rescnn_appliance.devices.player import Player

    try:
        return Player.from_settings(settings, on_event)
    except (ImportError, OSError, NameError, RuntimeError) as exc:
        raise PlayerUnavailable(
            f"audio: libVLC cannot start ({_one_line(exc)}); install it with "
            "'sudo apt install libvlc5 vlc-plugin-base' or set player.aout") from None


def _pending_to_json(item: Pending) -> dict[str, Any]:
    return {**asdict(item), "record": "play" if isinstance(item, PendingPlay) else "feedback"}


def _pending_from_json(item: dict[str, Any]) -> Pending:
    """One entry of ``pending-feedback.json``; files from before plays were queued have no
    ``record`` key and hold feedback only."""
    kind = item.pop("record", "feedback")
    return PendingPlay(**item) if kind == "play" else PendingFeedback(**item)


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc_text() -> str:
    return _utcnow().isoformat(timespec="seconds")
