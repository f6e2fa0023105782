"""Audio playback behind one small interface, with libVLC (python-vlc) doing the work.

:class:`Player` plays one file at a time and reports what happened through a callback:
``PlayerEvent("end", path)`` when a track finishes, ``PlayerEvent("error", path, why)`` when VLC
cannot open or decode it, and ``PlayerEvent("skipped", path)`` when a fade-out started by
:meth:`Player.skip` has finished. The callback runs on VLC's event thread (or the fade thread):
hand the event to a queue and return, and never call back into libVLC from it (that deadlocks).

:class:`NullPlayer` has the same interface and plays nothing, for headless runs without libVLC.

``vlc`` is imported inside :class:`Player`, so this module imports on machines without libVLC.

Memory: for a file it cannot decode, libVLC probes every demuxer, allocating and freeing buffers
of several MB on short-lived threads. glibc's *dynamic* mmap threshold then rises to the size of
such a freed buffer (up to 32 MiB) and its trim threshold to twice that, so later big buffers come
from the thread's malloc arena and about 8.5 MB of freed memory stays resident in every arena
(glibc makes one per concurrently running thread, up to 8 per core): the soak's RSS grew in
8 MB steps at bad-track faults. :func:`limit_native_memory` fixes both thresholds (which turns
the dynamic rise off) and caps the arenas, as ``MALLOC_ARENA_MAX=2`` in the systemd unit does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Self

EventKind = Literal["end", "error", "skipped"]
FADE_STEPS_PER_S = 25  # volume steps per second of fade: smooth to the ear, cheap on a Pi 3


@dataclass(frozen=True)
class PlayerEvent:
    """Something that happened to the track in ``path``: ``end``, ``error`` or ``skipped``.

    Example::

        >>> PlayerEvent("error", "/music/a.mp3", "file not found").kind
        'error'
    """

    kind: EventKind
    path: str
    message: str = ""


EventCallback = Callable[[PlayerEvent], None]


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt() numbers
MALLOC_THRESHOLD = 1 << 20  # 1 MiB: bigger blocks are mmapped and given back when freed
MALLOC_ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "gnu_get_libc_version"):
        return None  # musl or another libc: none of this applies
    return libc


def limit_native_memory() -> list[str]:
    """Fix glibc's trim and mmap thresholds at 1 MiB and cap its arenas at 2; see the module
    docstring. Settings already in the environment (``MALLOC_ARENA_MAX``,
    ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) win. Returns what was set.

    Call once, early, before libVLC starts threads. Example::

        >>> limit_native_memory()   # doctest: +SKIP
        ['trim threshold 1048576', 'mmap threshold 1048576', 'arenas 2']
    """
    libc = _glibc()
    if libc is None:
        return []
    done = []
    for env, param, value, what in (
            ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, MALLOC_THRESHOLD, "trim threshold"),
            ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MALLOC_THRESHOLD, "mmap threshold"),
            ("MALLOC_ARENA_MAX", M_ARENA_MAX, MALLOC_ARENAS, "arenas")):
        if not os.environ.get(env) and libc.mallopt(param, value):
            done.append(f"{what} {value}")
    return done


def _clamp_volume(volume: float) -> int:
    return max(0, min(100, round(volume)))


class Player:
    """Plays audio files through libVLC; end and error events arrive through ``on_event``.

    ``aout`` picks VLC's audio output module (``alsa``, ``pulse``, ``dummy``; empty lets VLC
    choose) and ``device`` the device for it (``hw:1,0``). ``volume`` is 0..100. ``fade_s`` is the
    fade-out that :meth:`skip` uses.

    Example::

        >>> import queue
        >>> events = queue.Queue()
        >>> player = Player(on_event=events.put, aout="dummy")    # doctest: +SKIP
        >>> player.play("/music/song.ogg")                         # doctest: +SKIP
        >>> events.get(timeout=600)                                # doctest: +SKIP
        PlayerEvent(kind='end', path='/music/song.ogg', message='')
    """

    def __init__(
        self,
        on_event: EventCallback | None = None,
        *,
        aout: str = "",
        device: str = "",
        volume: int = 70,
        fade_s: float = 1.5,
        vlc_args: tuple[str, ...] = (),
    ) -> None:
        import vlc  # lazy: libVLC is only needed where something is played

        self._vlc = vlc
        self._on_event = on_event
        self.fade_s = float(fade_s)
        self._volume = _clamp_volume(volume)
        self._lock = threading.Lock()
        self._path: str | None = None
        self._generation = 0  # bumps on every play/stop so a running fade knows it is stale
        self._fade_thread: threading.Thread | None = None
        args = ["--no-video", "--quiet", "--no-xlib", "--intf=dummy", *vlc_args]
        if aout:
            args.append(f"--aout={aout}")
        self._instance = vlc.Instance(args)
        if self._instance is None:
            raise RuntimeError(f"libVLC could not start with options {' '.join(args)}")
        self._mp = self._instance.media_player_new()
        if aout and device:
            self._mp.audio_output_device_set(None, device)
        events = self._mp.event_manager()
        events.event_attach(vlc.EventType.MediaPlayerEndReached, self._vlc_end)
        events.event_attach(vlc.EventType.MediaPlayerEncounteredError, self._vlc_error)

    @classmethod
    def from_settings(cls, settings: Any, on_event: EventCallback | None = None) -> Player:
        """A player set up from ``settings.player`` and ``settings.playback.fade_s``."""
        return cls(
            on_event,
            aout=settings.player.aout,
            device=settings.player.device,
            volume=settings.player.volume,
            fade_s=settings.playback.fade_s,
        )

    # -- what a caller asks for -------------------------------------------------------------

    def play(self, path: str | os.PathLike[str], start_s: float = 0.0) -> None:
        """Start ``path`` (from ``start_s`` seconds in, for resume after a restart).

        A missing or undecodable file does not raise: an ``error`` event follows.
        """
        path = os.fspath(path)
        with self._lock:
            self._generation += 1
            self._path = path
        media = self._instance.media_new_path(path)
        if start_s > 0:
            media.add_option(f":start-time={float(start_s):.3f}")
        self._mp.set_media(media)
        media.release()
        self._mp.audio_set_volume(self._volume)
        self._mp.play()

    def pause(self) -> None:
        """Pause the current track; :meth:`resume` goes on from the same place."""
        self._mp.set_pause(1)

    def resume(self) -> None:
        self._mp.set_pause(0)

    def stop(self) -> None:
        """Stop at once; no event follows."""
        with self._lock:
            self._generation += 1
            self._path = None
        self._mp.stop()
        self._mp.audio_set_volume(self._volume)

    def skip(self, fade_s: float | None = None) -> None:
        """Fade the current track out over ``fade_s`` (default :attr:`fade_s`), then stop it.

        Returns at once; a ``skipped`` event follows when the fade is done. A :meth:`play` or
        :meth:`stop` during the fade cancels it (and no ``skipped`` event comes).
        """
        seconds = self.fade_s if fade_s is None else max(0.0, float(fade_s))
        with self._lock:
            generation, path = self._generation, self._path
        if path is None:
            return
        self._fade_thread = threading.Thread(
            target=self._fade_then_stop, args=(generation, path, seconds), name="player-fade",
            daemon=True,
        )
        self._fade_thread.start()

    @property
    def volume(self) -> int:
        """Volume 0..100 as last set (the fade does not change it)."""
        return self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._volume = _clamp_volume(value)
        self._mp.audio_set_volume(self._volume)

    @property
    def path(self) -> str | None:
        """The track last started, or None after :meth:`stop`."""
        return self._path

    @property
    def position_s(self) -> float:
        """Seconds into the current track (0 when nothing plays)."""
        ms = self._mp.get_time()
        return max(0.0, ms / 1000.0) if ms and ms > 0 else 0.0

    @property
    def state(self) -> str:
        """``playing``, ``paused``, ``opening``, ``ended``, ``error`` or ``stopped``."""
        name = str(self._mp.get_state()).rsplit(".", 1)[-1].lower()
        return {"nothingspecial": "stopped", "buffering": "playing"}.get(name, name)

    @property
    def vlc_media_player(self) -> Any:
        """The underlying ``vlc.MediaPlayer``, for diagnostics and tests."""
        return self._mp

    def close(self) -> None:
        """Stop and free libVLC; the player cannot be used afterwards."""
        self.stop()
        if self._fade_thread is not None:
            self._fade_thread.join(timeout=2.0)
        self._mp.release()
        self._instance.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside -----------------------------------------------------------------------------

    def _emit(self, event: PlayerEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _finished(self) -> str | None:
        """Forget the current track (a running fade stops) and say which it was."""
        with self._lock:
            path, self._path = self._path, None
            self._generation += 1
        return path

    def _vlc_end(self, _event: Any) -> None:
        # Runs on VLC's thread: no libVLC calls here.
        path = self._finished()
        if path is not None:
            self._emit(PlayerEvent("end", path))

    def _vlc_error(self, _event: Any) -> None:
        path = self._finished()
        if path is None:
            return
        why = "file not found" if not os.path.exists(path) else "VLC could not open or decode it"
        self._emit(PlayerEvent("error", path, why))

    def _fade_then_stop(self, generation: int, path: str, seconds: float) -> None:
        steps = max(1, int(seconds * FADE_STEPS_PER_S))
        start = time.monotonic()
        for step in range(1, steps + 1):
            if self._generation != generation:
                return
            self._mp.audio_set_volume(_clamp_volume(self._volume * (1 - step / steps)))
            delay = start + seconds * step / steps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        with self._lock:
            if self._generation != generation:
                return
            self._generation += 1
            self._path = None
        self._mp.stop()
        self._mp.audio_set_volume(self._volume)
        self._emit(PlayerEvent("skipped", path))


class NullPlayer:
    """Same interface as :class:`Player`, plays nothing; each track "ends" after ``track_s``.

    For headless runs on machines without libVLC. Events come on a timer thread, as VLC's would.

    Example::

        >>> import queue
        >>> events = queue.Queue()
        >>> player = NullPlayer(on_event=events.put, track_s=0.01)
        >>> player.play("a.ogg")
        >>> events.get(timeout=2)
        PlayerEvent(kind='end', path='a.ogg', message='')
    """

    def __init__(self, on_event: EventCallback | None = None, *, track_s: float = 30.0,
                 volume: int = 70, fade_s: float = 1.5) -> None:
        self._on_event = on_event
        self.track_s = track_s
        self.fade_s = fade_s
        self._volume = _clamp_volume(volume)
        self._path: str | None = None
        self._timer: threading.Timer | None = None
        self._started = 0.0
        self._paused_at: float | None = None
        self._state = "stopped"

    def _arm(self, seconds: float, kind: EventKind) -> None:
        self._cancel()
        path = self._path

        def fire() -> None:
            if self._path == path and path is not None:
                self._path, self._state = None, "stopped" if kind == "skipped" else "ended"
                if self._on_event is not None:
                    self._on_event(PlayerEvent(kind, path))

        self._timer = threading.Timer(seconds, fire)
        self._timer.daemon = True
        self._timer.start()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def play(self, path: str | os.PathLike[str], start_s: float = 0.0) -> None:
        self._path, self._state = os.fspath(path), "playing"
        self._started, self._paused_at = time.monotonic() - start_s, None
        self._arm(max(0.0, self.track_s - start_s), "end")

    def pause(self) -> None:
        if self._state == "playing":
            self._cancel()
            self._paused_at, self._state = time.monotonic(), "paused"

    def resume(self) -> None:
        if self._state == "paused" and self._paused_at is not None:
            self._started += time.monotonic() - self._paused_at
            self._paused_at, self._state = None, "playing"
            self._arm(max(0.0, self.track_s - self.position_s), "end")

    def stop(self) -> None:
        self._cancel()
        self._path, self._state = None, "stopped"

    def skip(self, fade_s: float | None = None) -> None:
        if self._path is not None:
            self._arm(self.fade_s if fade_s is None else fade_s, "skipped")

    @property
    def volume(self) -> int:
        return self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._volume = _clamp_volume(value)

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def position_s(self) -> float:
        if not self._path:
            return 0.0
        return (self._paused_at or time.monotonic()) - self._started

    @property
    def state(self) -> str:
        return self._state

    def close(self) -> None:
        self.stop()
