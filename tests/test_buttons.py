"""Buttons and the status LED on gpiozero's MockFactory: pins driven low and high like a finger."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from rescnn_appliance.config import load_settings
from rescnn_appliance.devices.buttons import Buttons, StatusLed

LIKE, SKIP, USER, LED_PIN = 17, 27, 22, 23


class Presses:
    """Collects words with the time they arrived, as the appliance's queue would."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.times: list[float] = []
        self.arrived = threading.Event()

    def __call__(self, word: str) -> None:
        self.words.append(word)
        self.times.append(time.monotonic())
        self.arrived.set()


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def presses():
    return Presses()


@pytest.fixture
def buttons(factory, presses):
    with Buttons(presses, like_pin=LIKE, skip_pin=SKIP, user_pin=USER, hold_s=0.3,
                 bounce_s=0.03, pin_factory=factory) as b:
        yield b


def tap(factory, pin, hold=0.06):
    factory.pin(pin).drive_low()
    time.sleep(hold)
    factory.pin(pin).drive_high()


def test_like_and_user_fire_as_the_button_goes_down(factory, presses, buttons):
    factory.pin(LIKE).drive_low()
    assert presses.words == ["like"]
    factory.pin(LIKE).drive_high()
    time.sleep(0.05)
    tap(factory, USER)
    assert presses.words == ["like", "user"]


def test_a_short_skip_press_fires_skip_on_release(factory, presses, buttons):
    factory.pin(SKIP).drive_low()
    time.sleep(0.1)
    assert presses.words == []
    factory.pin(SKIP).drive_high()
    assert presses.words == ["skip"]


def test_holding_skip_means_never_and_release_adds_nothing(factory, presses, buttons):
    factory.pin(SKIP).drive_low()
    assert presses.arrived.wait(2)
    assert presses.words == ["never"]  # while still held: the LED can confirm at once
    factory.pin(SKIP).drive_high()
    time.sleep(0.1)
    assert presses.words == ["never"]


def test_never_fires_after_the_hold_time_not_before(factory, presses, buttons):
    start = time.monotonic()
    factory.pin(SKIP).drive_low()
    assert presses.arrived.wait(2)
    assert 0.28 <= presses.times[0] - start < 0.6
    factory.pin(SKIP).drive_high()


@pytest.fixture
def slow_buttons(factory, presses):
    """A long bounce window, so a busy test machine cannot stretch a bounce past it."""
    with Buttons(presses, like_pin=LIKE, skip_pin=SKIP, user_pin=USER, hold_s=2.0,
                 bounce_s=0.3, pin_factory=factory) as b:
        yield b


def test_contact_bounce_gives_one_press(factory, presses, slow_buttons):
    pin = factory.pin(LIKE)
    for _ in range(4):  # a bouncing contact: edges a millisecond apart
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    time.sleep(0.5)
    pin.drive_high()
    for _ in range(3):
        pin.drive_low()
        pin.drive_high()
    time.sleep(0.5)
    assert presses.words == ["like"]
    tap(factory, LIKE, hold=0.4)  # the next real press counts again
    assert presses.words == ["like", "like"]


def test_a_tap_shorter_than_the_bounce_time_is_not_lost(factory, presses, slow_buttons):
    pin = factory.pin(SKIP)
    pin.drive_low()
    pin.drive_high()  # released inside the bounce window
    assert presses.arrived.wait(2)
    assert presses.words == ["skip"]
    time.sleep(0.35)
    tap(factory, SKIP, hold=0.4)
    assert presses.words == ["skip", "skip"]


def test_every_press_in_a_row_arrives_once(factory, presses, buttons):
    """Twenty deliberate presses: twenty words, in order (latency: benchmarks/devices_bench.py)."""
    for n in range(20):
        word_pin = LIKE if n % 2 == 0 else USER
        presses.arrived.clear()
        factory.pin(word_pin).drive_low()
        assert presses.arrived.wait(1)
        time.sleep(0.04)
        factory.pin(word_pin).drive_high()
        time.sleep(0.04)
    assert presses.words == ["like", "user"] * 10


def test_buttons_use_the_pins_in_the_settings(factory, presses):
    settings = load_settings(path=None, overrides={"buttons.like_pin": 5, "buttons.skip_pin": 6,
                                                   "buttons.user_pin": 13})
    with Buttons.from_settings(settings, presses, pin_factory=factory):
        tap(factory, 5)
        tap(factory, 13)
        tap(factory, LIKE)  # the default like pin is not wired any more
        assert presses.words == ["like", "user"]


def test_the_same_pin_twice_is_refused(factory, presses):
    with pytest.raises(ValueError, match="three different pins"):
        Buttons(presses, like_pin=4, skip_pin=4, user_pin=5, pin_factory=factory)


def rising_edges(pin) -> int:
    states = [s.state for s in pin.states]
    return sum(1 for a, b in itertools.pairwise(states) if not a and b)


@pytest.fixture
def led(factory):
    led = StatusLed(LED_PIN, pin_factory=factory)
    led.BLINK_ON_S = led.BLINK_OFF_S = 0.02
    led.FLASH_S = 0.02
    yield led
    led.close()


def test_led_is_on_while_a_face_is_in_view(led):
    assert not led.is_lit
    led.face_in_view(True)
    assert led.is_lit
    led.face_in_view(False)
    assert not led.is_lit


def test_led_blinks_the_profile_number_then_shows_the_face_state(factory, led):
    pin = factory.pin(LED_PIN)
    led.face_in_view(True)
    pin.clear_states()
    led.show_profile(3)
    assert led.wait_idle(5)
    # off, three blinks, back on for the face: four rising edges
    assert rising_edges(pin) == 4
    assert led.is_lit
    led.face_in_view(False)
    pin.clear_states()
    led.show_profile(2)
    assert led.wait_idle(5)
    assert rising_edges(pin) == 2 and not led.is_lit


def test_led_flashes_once_to_acknowledge_a_press(factory, led):
    pin = factory.pin(LED_PIN)
    pin.clear_states()
    led.acknowledge()
    assert led.wait_idle(5)
    assert [s.state for s in pin.states] == [False, True, False]
    assert not led.is_lit
