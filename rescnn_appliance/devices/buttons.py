"""The three push buttons and the status LED, on gpiozero.

:class:`Buttons` turns presses on the like, skip and user pins into the words ``like``, ``skip``,
``never`` (skip held for ``hold_s``) and ``user``, handed to a callback on gpiozero's thread: put
them on a queue and return. :class:`StatusLed` shows that a face is in view, blinks a profile
number and flashes once to acknowledge a press.

Buttons connect a BCM pin to ground; the internal pull-up holds the pin high until pressed.
gpiozero picks the pin library (lgpio on a Pi, ``MockFactory`` in tests through
``GPIOZERO_PIN_FACTORY=mock``); ``gpiozero`` itself is imported only when a device is built.

Debouncing is done here, in software, rather than with gpiozero's ``bounce_time``: each pin
library implements that differently (lgpio as a glitch filter that delays every edge, the mock
library not at all), and a press must reach the database within 50 ms on every one of them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Self

ButtonWord = Literal["like", "skip", "never", "user"]
PressCallback = Callable[[str], None]


class _DebouncedButton:
    """One button: the first edge wins, edges within ``bounce_s`` after it are contact bounce."""

    def __init__(self, pin: int, bounce_s: float, on_down: Callable[[], None],
                 on_up: Callable[[], None], pin_factory: Any) -> None:
        from gpiozero import Button

        self.button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self.bounce_s = bounce_s
        self.down = False
        self._last_edge = float("-inf")
        self._settle_timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._on_down, self._on_up = on_down, on_up
        self.button.when_pressed = lambda: self._edge(True)
        self.button.when_released = lambda: self._edge(False)

    def _edge(self, down: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if down == self.down:
                return
            wait = self._last_edge + self.bounce_s - now
            if wait > 0:
                # Inside the bounce window. Look again when it closes, so a real release or
                # press that happened inside it is not lost.
                self._schedule_settle(wait)
                return
            self.down, self._last_edge = down, now
        (self._on_down if down else self._on_up)()

    def _schedule_settle(self, wait: float) -> None:
        if self._settle_timer is None or not self._settle_timer.is_alive():
            self._settle_timer = threading.Timer(wait + 0.001, self._settle)
            self._settle_timer.daemon = True
            self._settle_timer.start()

    def _settle(self) -> None:
        self._edge(bool(self.button.is_pressed))

    def close(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
        self.button.close()


class Buttons:
    """Like, skip and user buttons; each press calls ``on_press`` with one word.

    ``like`` and ``user`` fire as the button goes down. ``skip`` fires when it comes up again
    before ``hold_s``; held that long it fires ``never`` instead (and nothing on release).

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> words = []
        >>> factory = MockFactory()
        >>> buttons = Buttons(words.append, like_pin=17, skip_pin=27, user_pin=22,
        ...                   pin_factory=factory)
        >>> factory.pin(17).drive_low(); factory.pin(17).drive_high()
        >>> words
        ['like']
        >>> buttons.close()
    """

    def __init__(
        self,
        on_press: PressCallback,
        *,
        like_pin: int = 17,
        skip_pin: int = 27,
        user_pin: int = 22,
        hold_s: float = 1.5,
        bounce_s: float = 0.05,
        pin_factory: Any = None,
    ) -> None:
        pins = {"like": like_pin, "skip": skip_pin, "user": user_pin}
        if len(set(pins.values())) != 3:
            raise ValueError(f"buttons need three different pins, got {pins}")
        self._on_press = on_press
        self.hold_s = hold_s
        self._hold_timer: threading.Timer | None = None
        self._held = False
        self._buttons: list[_DebouncedButton] = []
        try:
            self._buttons.append(_DebouncedButton(
                like_pin, bounce_s, lambda: on_press("like"), lambda: None, pin_factory))
            self._buttons.append(_DebouncedButton(
                skip_pin, bounce_s, self._skip_down, self._skip_up, pin_factory))
            self._buttons.append(_DebouncedButton(
                user_pin, bounce_s, lambda: on_press("user"), lambda: None, pin_factory))
        except Exception:
            self.close()
            raise

    @classmethod
    def from_settings(cls, settings: Any, on_press: PressCallback,
                      pin_factory: Any = None) -> Buttons:
        """Buttons on the pins in ``settings.buttons``."""
        b = settings.buttons
        return cls(on_press, like_pin=b.like_pin, skip_pin=b.skip_pin, user_pin=b.user_pin,
                   hold_s=b.hold_s, bounce_s=b.bounce_s, pin_factory=pin_factory)

    def _skip_down(self) -> None:
        self._held = False
        self._hold_timer = threading.Timer(self.hold_s, self._skip_held)
        self._hold_timer.daemon = True
        self._hold_timer.start()

    def _skip_held(self) -> None:
        if self._buttons[1].down:
            self._held = True
            self._on_press("never")

    def _skip_up(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        if not self._held:
            self._on_press("skip")

    def close(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        for button in self._buttons:
            button.close()
        self._buttons = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StatusLed:
    """The status LED: steady on while a face is in view, blinks and flashes on request.

    Patterns play one after another on a small worker thread, then the LED goes back to showing
    whether a face is in view.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> led = StatusLed(23, pin_factory=MockFactory())
        >>> led.face_in_view(True)
        >>> led.show_profile(3)       # blinks three times
        >>> led.acknowledge()         # one short flash
        >>> led.close()
    """

    BLINK_ON_S = 0.25
    BLINK_OFF_S = 0.25
    FLASH_S = 0.08

    def __init__(self, pin: int = 23, pin_factory: Any = None) -> None:
        from gpiozero import LED

        self._led = LED(pin, pin_factory=pin_factory)
        self._face = False
        self._patterns: queue.Queue[list[tuple[bool, float]] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="status-led", daemon=True)
        self._worker.start()

    @classmethod
    def from_settings(cls, settings: Any, pin_factory: Any = None) -> StatusLed:
        return cls(settings.buttons.led_pin, pin_factory=pin_factory)

    @property
    def is_lit(self) -> bool:
        return bool(self._led.is_lit)

    def face_in_view(self, seen: bool) -> None:
        """Steady on while ``seen``; takes effect now unless a pattern is playing."""
        self._face = bool(seen)
        if self._patterns.unfinished_tasks == 0:
            self._led.value = self._face

    def show_profile(self, number: int) -> None:
        """Blink ``number`` times (profile 1 blinks once)."""
        steps: list[tuple[bool, float]] = [(False, self.BLINK_OFF_S)]
        for _ in range(max(0, number)):
            steps += [(True, self.BLINK_ON_S), (False, self.BLINK_OFF_S)]
        self._patterns.put(steps)

    def acknowledge(self) -> None:
        """One short flash: the press was recorded (off-flash while a face keeps it lit)."""
        self._patterns.put([(not self._face, self.FLASH_S), (self._face, self.FLASH_S)])

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued pattern has played; True if it did within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._patterns.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._patterns.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            steps = self._patterns.get()
            try:
                if steps is None:
                    return
                for lit, seconds in steps:
                    self._led.value = lit
                    time.sleep(seconds)
                self._led.value = self._face
            finally:
                self._patterns.task_done()

    def close(self) -> None:
        self._patterns.put(None)
        self._worker.join(timeout=5)
        self._led.close()
