"""``rescnn-appliance bench``: latency per stage, CPU, temperature and power on this board.

Example::

    $ rescnn-appliance bench                                   # camera (demo off the Pi), 300 frames
    $ rescnn-appliance bench --precision fp32,int8 --threads 1,2,3,4 --duration 30
    $ rescnn-appliance bench --source ~/replay/ --frames 500 --out /tmp/bench
    $ rescnn-appliance bench --npz ../shared/data/fer2013/fer2013_trainval.npz --frames 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rescnn_appliance.commands._source import SOURCES, source_overrides
from rescnn_appliance.config import ConfigError, Settings

EX_INTERRUPTED = 130


def _words(kind: type, allowed: tuple[Any, ...]) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(dict.fromkeys(kind(w.strip()) for w in text.split(",") if w.strip()))
        except ValueError:
            values = ()
        if not values or any(v not in allowed for v in values):
            raise argparse.ArgumentTypeError(
                f"{text!r}: a comma-separated list of {', '.join(map(str, allowed))}")
        return values
    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure latency per stage, CPU, temperature and power",
        description="Run the appliance's pipeline (camera -> face -> models -> mood -> track "
                    "choice) and log every frame and every second to a folder under the state "
                    "directory; print p50/p95/p99/max per stage and the change against the "
                    "previous run on this board. Ctrl-C stops early and still writes the summary.")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="frames per variant (default 300; with --npz: every face)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds per variant (with --frames: whichever comes first)")
    p.add_argument("--precision", type=_words(str, ("fp32", "int8")), default=None,
                   metavar="LIST", help="fp32, int8 or fp32,int8 (default: models.precision)")
    p.add_argument("--threads", type=_words(int, (1, 2, 3, 4)), default=None, metavar="LIST",
                   help="torch and OpenCV threads, e.g. 1,2,3,4 (default: models.threads)")
    p.add_argument("--source", default=None, metavar="SOURCE",
                   help=f"frame source: one of {', '.join(SOURCES)}, or a video file or image "
                        "folder (default: camera.source; auto falls back to the demo)")
    p.add_argument("--npz", type=Path, default=None,
                   help="labelled faces (FER or AffectNet npz): accuracy and time per test "
                        "condition with confusion matrices, instead of camera frames")
    p.add_argument("--split", default="val", help="split of a FER-layout npz (default: val)")
    p.add_argument("--models", type=Path, default=None, metavar="DIR",
                   help="models folder (default: models.dir)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where run folders go (default: <state dir>/bench)")
    p.add_argument("--warmup", type=int, default=5, metavar="N",
                   help="frames run before timing each variant (default 5)")
    p.add_argument("--library-tracks", type=int, default=200, metavar="N",
                   help="generated tracks the recommender chooses from (0: no track stage)")
    p.add_argument("--root", default="/", metavar="DIR",
                   help="where /sys and /proc are read, for sensors and meters (default /)")
    p.add_argument("--vcgencmd", default="vcgencmd", metavar="PATH",
                   help="the vcgencmd tool ('' not to use it)")
    p.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=handler, settings_overrides=overrides)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``bench``'s flags as dotted settings."""
    out: dict[str, Any] = {}
    out.update(source_overrides(args.source))
    if args.models is not None:
        out["models.dir"] = str(args.models)
    return out


def handler(args: argparse.Namespace, settings: Settings) -> int:
    from rescnn_appliance.bench import BenchError, BenchOptions, run_bench

    for name in ("frames", "duration", "warmup", "library_tracks"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative, got {value}")
    options = BenchOptions(
        frames=args.frames or None, duration=args.duration or None,
        precisions=args.precision or (settings.models.precision,),
        threads=args.threads or (max(1, int(settings.models.threads)),),
        npz=args.npz, split=args.split, out=args.out, warmup=args.warmup,
        library_tracks=args.library_tracks, root=args.root, vcgencmd=args.vcgencmd or None,
        progress=not args.no_progress and sys.stderr.isatty(), plots=not args.no_plots,
        argv=sys.argv[1:])
    try:
        result = run_bench(settings, options)
    except BenchError as exc:
        print(f"rescnn-appliance bench: {exc}", file=sys.stderr)
        return exc.status
    return EX_INTERRUPTED if result.interrupted else 0
