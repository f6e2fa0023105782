"""``rescnn-appliance run``: the appliance itself, until SIGTERM, Ctrl-C or ``--duration``.

Example::

    $ rescnn-appliance run --duration 60 --source demo --aout dummy
    $ rescnn-appliance run --source ~/faces/ --music ~/Music --no-buttons
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from rescnn_appliance.commands._source import SOURCES, source_overrides
from rescnn_appliance.config import EX_CONFIG, Settings

EX_UNAVAILABLE = 69  # libVLC missing: a restart may help once the package is installed


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the appliance (camera -> mood -> music)",
                       description="Run the appliance: watch the listener, play music for the "
                                   "mood. Stops with exit status 0 on SIGTERM, Ctrl-C or after "
                                   "--duration.")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="stop cleanly after S seconds (default: run until stopped)")
    p.add_argument("--source", default=None, metavar="SOURCE",
                   help=f"frame source: one of {', '.join(SOURCES)}, or a video file or image "
                        "folder (default: camera.source)")
    p.add_argument("--music", type=Path, action="append", default=None, metavar="DIR",
                   help="music folder (repeatable; default: library.folders)")
    p.add_argument("--no-buttons", action="store_true", help="do not use the GPIO buttons and LED")
    p.add_argument("--aout", default=None, metavar="MODULE",
                   help="VLC audio output, e.g. alsa, pulse, dummy (default: player.aout)")
    p.set_defaults(func=handler, settings_overrides=overrides)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``run``'s flags as dotted settings."""
    out: dict[str, Any] = {}
    out.update(source_overrides(args.source))
    if args.music:
        out["library.folders"] = [str(p) for p in args.music]
    if args.no_buttons:
        out["buttons.enabled"] = False
    if args.aout is not None:
        out["player.aout"] = args.aout
    return out


def _live_printer() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(line: str) -> None:
        sys.stderr.write("\r\x1b[K" + line[:160])
        sys.stderr.flush()

    return show


def handler(args: argparse.Namespace, settings: Settings) -> int:
    import logging as _logging

    _logging.getLogger("alembic").setLevel(_logging.WARNING)  # migration chatter
    from rescnn_appliance.appliance import Appliance, PlayerUnavailable
    from rescnn_appliance.demo import music_folders_or_demo
    from rescnn_appliance.devices.service import configure_logging
    from rescnn_appliance.music.db import DatabaseBusy, MigrationError
    from rescnn_appliance.vision.affect import ModelError

    root = logging.getLogger()
    for h in list(root.handlers):  # the CLI's plain stderr handler; journald or fields instead
        root.removeHandler(h)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    folders, _demo = music_folders_or_demo(settings.music_folders, settings.state_dir)
    app = Appliance(settings, music_folders=folders, on_line=_live_printer())
    previous = {sig: signal.signal(sig, lambda n, _f: app.request_stop(signal.Signals(n).name))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            app.start()
        except ModelError as exc:
            print(f"rescnn-appliance: {exc}", file=sys.stderr)
            return EX_CONFIG
        except PlayerUnavailable as exc:
            print(f"rescnn-appliance: {exc}", file=sys.stderr)
            return EX_UNAVAILABLE
        except (MigrationError, DatabaseBusy) as exc:
            print(f"rescnn-appliance: {exc}", file=sys.stderr)
            return 1
        return app.run(duration=args.duration or None)
    finally:
        app.close()
        if app.on_line is not None:
            sys.stderr.write("\n")
        for sig, old in previous.items():
            signal.signal(sig, old)
