"""The one entry point: ``rescnn-appliance {run,status,users,library,models,bench,doctor}``.

Each subcommand lives in ``rescnn_appliance/commands/<name>.py`` and exposes
``add_parser(subparsers)``, which registers its parser and sets ``func(args, settings) -> int``.
Settings are loaded once here so every command refuses a bad configuration the same way:
one line on stderr naming the file and key, and exit status 78 (EX_CONFIG).

Example::

    $ rescnn-appliance --set models.threads=2 models evaluate --npz val.npz --json
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rescnn_appliance import __version__, commands
from rescnn_appliance.config import EX_CONFIG, SYSTEM_CONFIG, ConfigError, load_settings


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word is a string
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescnn-appliance",
        description="A music player that picks tracks from the listener's face.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None,
        help=f"settings file (default: {SYSTEM_CONFIG} when it exists)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set camera.source=demo (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # helpers of a command, not commands
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        overrides = dict(_parse_override(o) for o in args.overrides)
        extra = getattr(args, "settings_overrides", None)
        if extra:
            overrides.update(extra(args))
        settings = load_settings(
            args.config if args.config else SYSTEM_CONFIG,
            overrides,
            required=args.config is not None,
        )
    except ConfigError as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
