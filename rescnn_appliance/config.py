"""Typed settings: packaged defaults, then the system file, then command-line overrides.

Every key a user may set is in ``defaults.toml``; its value there fixes the key's type. A file
with an unknown key, a wrong type or bad TOML raises :class:`ConfigError` naming the file and the
key, and the command line turns that into exit status 78 (EX_CONFIG) so that systemd does not
restart-loop on it.

Example::

    >>> settings = load_settings(path=None, overrides={"models.threads": 2})
    >>> settings.models.threads
    2
    >>> settings.playback.target
    'mirror'
"""

from __future__ import annotations

import copy
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

EX_CONFIG = 78
SYSTEM_CONFIG = Path("/etc/rescnn-appliance/appliance.toml")
DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
PACKAGE_MODELS = Path(__file__).resolve().parent.parent / "models"
SYSTEM_MODELS = Path("/usr/share/rescnn-appliance/models")

# Settings whose value must be one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "camera.source": ("auto", "picamera2", "v4l2", "video", "folder", "demo"),
    "models.precision": ("fp32", "int8"),
    "playback.target": ("mirror", "uplift"),
    "playback.absent_action": ("keep", "pause"),
    "privacy.store_readings": ("off", "coarse", "full"),
}


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line naming the file and the key."""


class Section(Mapping[str, Any]):
    """Read-only view of one ``[table]`` of the settings, with attribute access.

    Example::

        >>> Section("player", {"volume": 70}).volume
        70
    """

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no setting {self._name}.{key}") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._name!r}, {self._values!r})"


class Settings:
    """All settings, one :class:`Section` per TOML table, plus where they came from.

    Example::

        >>> s = load_settings(path=None)
        >>> s.recommend.mood_weight
        0.7
    """

    def __init__(self, values: dict[str, dict[str, Any]], sources: list[str]) -> None:
        self._values = values
        self.sources = sources
        for name, table in values.items():
            setattr(self, name, Section(name, table))

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._values)

    @property
    def state_dir(self) -> Path:
        """Where the database, resume state and bench runs live.

        ``$STATE_DIRECTORY`` (set by systemd's ``StateDirectory=``) wins, then
        ``service.state_dir``, then ``$XDG_STATE_HOME/rescnn-appliance``.
        """
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        configured = self._values["service"]["state_dir"]
        if configured:
            return Path(configured).expanduser()
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "rescnn-appliance"

    @property
    def database_path(self) -> Path:
        configured = self._values["library"]["database"]
        return Path(configured).expanduser() if configured else self.state_dir / "library.sqlite"

    @property
    def models_dir(self) -> Path:
        configured = self._values["models"]["dir"]
        if configured:
            return Path(configured).expanduser()
        return PACKAGE_MODELS if PACKAGE_MODELS.is_dir() else SYSTEM_MODELS

    @property
    def music_folders(self) -> list[Path]:
        return [Path(f).expanduser() for f in self._values["library"]["folders"]]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read config file (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def _check_value(where: str, key: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            try:
                value = float(value)
            except OverflowError:
                raise ConfigError(f"{where}: {key} is out of range, got a {len(str(value))}-digit number") from None
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        want = "list of strings" if isinstance(default, list) else type(default).__name__
        raise ConfigError(f"{where}: {key} must be a {want}, got {value!r}")
    choices = CHOICES.get(key)
    if choices and value not in choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: {key} must not be negative, got {value!r}")
    return value


def _shown(name: str) -> str:
    """A name from the user's file as it can be shown in one line: quoted when TOML's quoted
    keys smuggled in a line break or other control character."""
    return name if name.isprintable() else repr(name)


def _merge(values: dict[str, dict[str, Any]], layer: Mapping[str, Any], where: str) -> None:
    for table, entries in layer.items():
        if table not in values:
            raise ConfigError(f"{where}: unknown section [{_shown(table)}]")
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{where}: [{table}] must be a table")
        for key, value in entries.items():
            name = f"{table}.{key}"
            if key not in values[table]:
                raise ConfigError(f"{where}: unknown setting {_shown(name)}")
            values[table][key] = _check_value(where, name, values[table][key], value)


def load_settings(
    path: Path | str | None = SYSTEM_CONFIG,
    overrides: Mapping[str, Any] | None = None,
    required: bool = False,
) -> Settings:
    """Defaults, then ``path`` (skipped when absent unless ``required``), then ``overrides``.

    ``overrides`` maps dotted names (``"camera.source"``) to values, as flags give them.
    """
    values = _read_toml(DEFAULTS_FILE)
    sources = [str(DEFAULTS_FILE)]
    if path is not None:
        path = Path(path)
        if path.exists() or required:
            _merge(values, _read_toml(path), str(path))
            sources.append(str(path))
    if overrides:
        layer: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            table, _, key = dotted.partition(".")
            layer.setdefault(table, {})[key] = value
        _merge(values, layer, "command line")
        sources.append("command line")
    return Settings(values, sources)
