"""Fuzz the config file: any bytes -> Settings, or ConfigError with one line naming the file.

Never another exception: the CLI turns ConfigError into exit status 78, anything else would be a
traceback and a restart loop under systemd.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rescnn_appliance.config import DEFAULTS_FILE, ConfigError, Settings, load_settings
from tests.fuzz_count import FuzzCount, fuzz_settings

DEFAULTS: dict[str, dict[str, Any]] = tomllib.loads(DEFAULTS_FILE.read_text())
KEYS = [(table, key) for table, entries in DEFAULTS.items() for key in entries]
COUNT = FuzzCount()
FAST = fuzz_settings(100)
_report_count = COUNT.reporter("config")


def _check(path: Path) -> Settings | None:
    """The promise: Settings with the defaults' types, or one ConfigError line naming ``path``."""
    try:
        loaded = load_settings(path, required=True)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        return None
    for table, key in KEYS:
        value, default = loaded.as_dict()[table][key], DEFAULTS[table][key]
        assert type(value) is type(default), (table, key, value)
        if isinstance(value, float):
            assert math.isfinite(value), f"{table}.{key} = {value} accepted"
    return loaded


# --- TOML values of every kind, written by a tiny TOML writer ---------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


scalars = st.one_of(
    st.booleans(), st.integers(), st.integers(-10, 10_000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["auto", "demo", "fp32", "int8", "mirror", "uplift", "off", "full", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
known_key = st.sampled_from(KEYS)
any_key = st.one_of(known_key, st.tuples(st.sampled_from(list(DEFAULTS) + ["extra", "Camera"]),
                                         st.text(max_size=12)))


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "appliance.toml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(text)
    return path


@FAST
@given(entries=st.lists(st.tuples(any_key, values), max_size=6))
@example(entries=[(("camera", "\n"), [])])  # a quoted key with a line break: still one line
@example(entries=[(("\r", "x"), 1)])
def test_settings_with_random_values(tmp_path: Path, entries: list) -> None:
    COUNT.add("values")
    tables: dict[str, dict[str, Any]] = {}
    for (table, key), value in entries:
        tables.setdefault(table, {})[key] = value
    lines = []
    for table, entries_ in tables.items():
        lines.append(f"[{json.dumps(table)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in entries_.items()]
    _check(_write(tmp_path, "\n".join(lines) + "\n"))


@FAST
@given(text=st.text(max_size=300))
@example(text="\ufeff[camera]\n")
def test_random_text(tmp_path: Path, text: str) -> None:
    COUNT.add("text")
    _check(_write(tmp_path, text))


@FAST
@given(data=st.binary(max_size=300))
@example(data=b"\xff\xfe[camera]")
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    COUNT.add("bytes")
    _check(_write(tmp_path, data))


@fuzz_settings(80)
@given(key=known_key, value=values)
def test_command_line_overrides(key: tuple[str, str], value: Any) -> None:
    """Flags go through the same checks and name 'command line' instead of a file."""
    COUNT.add("overrides")
    try:
        loaded = load_settings(None, {".".join(key): value})
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("command line: ")
        return
    got = loaded.as_dict()[key[0]][key[1]]
    assert type(got) is type(DEFAULTS[key[0]][key[1]])


def test_file_that_is_a_directory_or_unreadable(tmp_path: Path) -> None:
    COUNT.add("special files")
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_settings(tmp_path, required=True)


# --- bugs the fuzzing found in config.py (fixed in 8a574c5); kept as regression tests ------------------------------

def test_known_bug_number_past_float_range_is_one_line(tmp_path: Path) -> None:
    """``fps = 1e400`` written as an integer: OverflowError in float() instead of ConfigError."""
    path = _write(tmp_path, "[camera]\nfps = 1" + "0" * 400 + "\n")
    with pytest.raises(ConfigError, match=r"appliance\.toml: camera\.fps"):
        load_settings(path, required=True)


@pytest.mark.parametrize("word", ["inf", "nan", "-inf"])
def test_known_bug_non_finite_numbers_are_refused(tmp_path: Path, word: str) -> None:
    """``fps = inf`` makes the sensing period 0 s (a busy loop); nan/inf are never meant."""
    path = _write(tmp_path, f"[mood]\nwindow_s = {word}\n[camera]\nfps = {word}\n")
    with pytest.raises(ConfigError, match=r"appliance\.toml: (camera\.fps|mood\.window_s)"):
        load_settings(path, required=True)


def test_known_bug_deeply_nested_toml_is_one_line(tmp_path: Path) -> None:
    """tomllib recurses per bracket: RecursionError instead of 'invalid TOML'."""
    path = _write(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"appliance\.toml: "):
        load_settings(path, required=True)
