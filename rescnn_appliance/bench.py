"""Bench mode: how fast and how power-hungry the appliance's pipeline is on this board.

:func:`run_bench` runs the appliance's per-frame pipeline (:mod:`.bench_pipeline`) on the
configured frame source, once per variant (``precisions`` x ``threads``), and writes a folder per
run under ``<state dir>/bench`` (or ``out``), named by the time it started:

- ``log.jsonl``: one ``run`` line, then a ``frame`` line per frame (milliseconds per stage) and a
  ``second`` line per second (:mod:`.bench_sampler`: CPU, memory, temperature, frequency,
  throttling, power), each with its ``variant``;
- ``summary.json`` and ``summary.csv`` (:mod:`.bench_report`), PNG plots (:mod:`.bench_plots`).

With a labelled set (``npz``) the faces of the set replace the camera: each is timed through
preprocess .. track under each test condition (clean, gaussian, impulse, illumination), which
gives the paper's Table 1 (accuracy per condition) and Table 2 (time), and a confusion matrix per
condition. ``frames`` and ``duration`` bound each variant (and condition); SIGINT or SIGTERM
stops the run early and the summary of what ran is still written.

Example::

    >>> settings = load_settings(None, {"camera.source": "demo"})          # doctest: +SKIP
    >>> result = run_bench(settings, BenchOptions(frames=100, threads=(1, 2)))  # doctest: +SKIP
    >>> result.summary["groups"][0]["stages"]["end_to_end"]["p50"]         # doctest: +SKIP
    5.8
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

from rescnn_appliance.bench_pipeline import LATENCIES, BenchPipeline, generated_library
from rescnn_appliance.bench_sampler import SystemSampler, board_id

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 300


class BenchError(Exception):
    """The bench cannot run (no frame source, no models); one line, and the exit status to use."""

    def __init__(self, message: str, status: int = 69) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class BenchOptions:
    """What one bench run does; see :func:`run_bench`.

    ``frames`` / ``duration`` bound each variant (neither: :data:`DEFAULT_FRAMES` frames, or
    every face of a labelled set); ``library_tracks = 0`` leaves out the track stage; ``root``
    is where sysfs/procfs are read (``/``), ``vcgencmd`` the tool's name (None: not used).

    Example::

        >>> BenchOptions(precisions=("fp32", "int8"), threads=(1, 4)).variants()
        [('fp32', 1), ('fp32', 4), ('int8', 1), ('int8', 4)]
    """

    frames: int | None = None
    duration: float | None = None
    precisions: tuple[str, ...] = ("fp32",)
    threads: tuple[int, ...] = (1,)
    npz: Path | None = None
    split: str = "val"
    out: Path | None = None
    warmup: int = 5
    library_tracks: int = 200
    root: str = "/"
    vcgencmd: str | None = "vcgencmd"
    progress: bool = True
    plots: bool = True
    argv: list[str] = field(default_factory=list)

    def variants(self) -> list[tuple[str, int]]:
        return [(p, t) for p in self.precisions for t in self.threads]


@dataclass
class BenchResult:
    """Where a run was written, its summary, and whether it was cut short."""

    run_dir: Path
    summary: dict[str, Any]
    interrupted: bool


class Stopper:
    """SIGINT/SIGTERM set ``stopped`` instead of raising, so the summary can still be written.

    A second signal raises :class:`KeyboardInterrupt` at once, for a bench that hangs.
    """

    def __init__(self) -> None:
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped = True
        log.warning("%s: stopping the bench, writing the summary (again to abort)",
                    signal.Signals(signum).name)

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class JsonLines:
    """A JSON Lines log written from the bench loop and the sampler thread."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self.fh.write(line)


def new_run_dir(out_root: Path) -> Path:
    """``out_root/YYYYmmdd-HHMMSS`` (``-2``, ``-3`` .. when a run started the same second)."""
    out_root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        run_dir = out_root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise BenchError(f"{out_root}: cannot make a new run folder")


def _new_group(precision: str, threads: int, condition: str | None) -> dict[str, Any]:
    return {"variant": f"{precision}/{threads}t", "precision": precision, "threads": threads,
            "condition": condition, "frames": 0, "faces": 0, "dropped": 0, "wall_s": 0.0,
            "ms": {s: [] for s in LATENCIES}, "t": [], "labels": [], "preds": []}


class BenchRun:
    """One run's state: the log, the sampler, the groups measured so far (see run_bench)."""

    def __init__(self, settings: Any, options: BenchOptions, run_dir: Path,
                 writer: JsonLines, stopper: Stopper) -> None:
        self.settings, self.options, self.run_dir = settings, options, run_dir
        self.writer, self.stopper = writer, stopper
        self.groups: list[dict[str, Any]] = []
        self.seconds: list[dict[str, Any]] = []
        self.sampler = SystemSampler(self._second, options.root, options.vcgencmd)
        self._bar: Any = None

    def _second(self, sample: dict[str, Any]) -> None:
        self.seconds.append(sample)
        self.writer.write(sample)

    def _record(self, group: dict[str, Any], times: dict[str, Any], t: float,
                label: int | None = None) -> None:
        ms = group["ms"]
        rec: dict[str, Any] = {"type": "frame", "variant": group["variant"],
                               "condition": group["condition"], "i": group["frames"],
                               "t": round(t - self.sampler.t0, 4), "face": times["face"]}
        for stage in LATENCIES:
            value = times.get(stage)
            if value is not None:
                ms[stage].append(value)
                rec[stage + "_ms"] = round(value, 4)
        group["t"].append(rec["t"])
        group["frames"] += 1
        if times["face"]:
            group["faces"] += 1
        if label is not None:
            group["labels"].append(label)
            group["preds"].append(times["pred"])
            rec["label"], rec["pred"] = label, times["pred"]
        self.writer.write(rec)
        self.sampler.frames += 1
        self._bar.update(1)

    def _limits(self, available: int | None = None) -> tuple[int | None, float]:
        o = self.options
        if available is not None:  # a labelled set: every face unless bounded
            frames: int | None = min(o.frames, available) if o.frames else available
        else:
            frames = o.frames if o.frames else (None if o.duration else DEFAULT_FRAMES)
        return frames, (time.monotonic() + o.duration) if o.duration else float("inf")

    @contextlib.contextmanager
    def _group(self, group: dict[str, Any], total: int | None) -> Iterator[None]:
        from tqdm import tqdm

        label = group["variant"] + (f" {group['condition']}" if group["condition"] else "")
        self.sampler.label = label
        self.groups.append(group)
        self._bar = tqdm(total=total, desc=label, unit="frame", disable=not self.options.progress,
                         dynamic_ncols=True, file=sys.stderr)
        start = time.perf_counter()
        try:
            yield
        finally:
            group["wall_s"] = round(time.perf_counter() - start, 4)
            self._bar.close()
            self._second(self.sampler.sample())  # the group's tail, so even a short one has one
            self.sampler.label = ""  # what runs between groups (loading a model) is no group's

    def frames_variant(self, source: Any, pipeline: BenchPipeline, precision: str,
                       threads: int) -> None:
        """The camera (or replay) frames through the pipeline until a bound or a signal."""
        from rescnn_appliance.vision.frames import EndOfStream

        for _ in range(self.options.warmup):
            frame = source.read()
            if frame is not None:
                pipeline.timed(frame.image, frame.t)
        group = _new_group(precision, threads, None)
        limit, deadline = self._limits()
        perf = time.perf_counter
        with self._group(group, limit):
            while not self.stopper.stopped:
                t0 = perf()
                try:
                    frame = source.read()
                except EndOfStream:
                    break
                t1 = perf()
                if frame is None:
                    group["dropped"] += 1
                    continue
                times = pipeline.timed(frame.image, frame.t)
                times["capture"] = (t1 - t0) * 1e3
                self._record(group, times, frame.t)
                if (limit and group["frames"] >= limit) or time.monotonic() >= deadline:
                    break

    def labelled_variant(self, faces: Any, pipeline_for: Any, precision: str,
                         threads: int) -> None:
        """Each test condition's faces through preprocess .. track; labels kept for accuracy."""
        from rescnn_appliance.bench_labelled import condition_faces, conditions

        for condition in conditions():
            if self.stopper.stopped:
                return
            x = condition_faces(faces, condition)
            pipeline = pipeline_for()
            for i in range(min(self.options.warmup, len(x))):
                pipeline.timed_crop(x[i], time.monotonic())
            group = _new_group(precision, threads, condition)
            limit, deadline = self._limits(len(x))
            with self._group(group, limit):
                for i in range(limit or len(x)):
                    if self.stopper.stopped or time.monotonic() >= deadline:
                        break
                    t = time.monotonic()
                    self._record(group, pipeline.timed_crop(x[i], t), t, int(faces.y[i]))


def _open_frames(settings: Any) -> Any:
    from rescnn_appliance.vision.demo_frames import DemoSource
    from rescnn_appliance.vision.frames import CameraError, open_source

    try:
        source = open_source(settings.camera)
    except CameraError as exc:
        raise BenchError(str(exc)) from None
    if isinstance(source, DemoSource):
        source.set_rate(0)  # the demo renders as fast as asked: measure the pipeline, not a clock
    return source


@contextlib.contextmanager
def _recommender(settings: Any, n_tracks: int, notes: list[str]) -> Iterator[Any]:
    if n_tracks <= 0:
        notes.append("track stage left out (--library-tracks 0)")
        yield None
        return
    try:
        with generated_library(settings, n_tracks) as rec:
            yield rec
    except ImportError as exc:
        notes.append(f"track stage left out: the music library cannot be used here ({exc})")
        yield None


def run_bench(settings: Any, options: BenchOptions) -> BenchResult:
    """Run the bench (see the module docstring); raises :class:`BenchError` when it cannot start."""
    import cv2

    from rescnn_appliance.bench_labelled import load_labelled
    from rescnn_appliance.tracking import MoodTracker
    from rescnn_appliance.vision.affect import AffectModel, ModelError
    from rescnn_appliance.vision.faces import FaceFinder

    labelled = load_labelled(options.npz, options.split) if options.npz else None
    out_root = Path(options.out).expanduser() if options.out else settings.state_dir / "bench"
    run_dir = new_run_dir(out_root)
    board = board_id(options.root)
    notes: list[str] = []
    source = None
    with Stopper() as stopper, (run_dir / "log.jsonl").open("w", buffering=1 << 16) as fh, \
            _recommender(settings, options.library_tracks, notes) as recommender:
        run = BenchRun(settings, options, run_dir, JsonLines(fh), stopper)
        try:
            source = None if labelled else _open_frames(settings)
            header = _header(settings, options, run_dir, board, source, labelled, run, notes)
            run.writer.write(header)
            mood_of = recommender.model.mood_of if recommender is not None else None
            run.sampler.start()
            for precision, threads in options.variants():
                if stopper.stopped:
                    break
                try:
                    model = AffectModel.load(settings.models_dir, precision, threads)
                except ModelError as exc:
                    raise BenchError(f"{exc} (models.dir = {settings.models_dir})", 78) from None
                cv2.setNumThreads(threads)

                def pipeline_for(model: AffectModel = model) -> BenchPipeline:
                    return BenchPipeline(FaceFinder.from_settings(settings.faces), model,
                                         MoodTracker.from_settings(settings.mood, mood_of),
                                         recommender)

                if labelled is not None:
                    run.labelled_variant(labelled, pipeline_for, precision, threads)
                else:
                    run.frames_variant(source, pipeline_for(), precision, threads)
        except BenchError:
            if not run.groups:
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing measured: leave no folder
            raise
        finally:
            run.sampler.stop()
            if source is not None:
                source.close()
        summary = _finish(run, header, out_root, board, stopper.stopped)
    return BenchResult(run_dir, summary, stopper.stopped)


def _header(settings: Any, options: BenchOptions, run_dir: Path, board: str, source: Any,
            labelled: Any, run: BenchRun, notes: list[str]) -> dict[str, Any]:
    import torch

    return {
        "type": "run", "id": run_dir.name, "dir": str(run_dir), "board": board,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": labelled.source if labelled is not None else source.describe(),
        "models_dir": str(settings.models_dir), "precisions": list(options.precisions),
        "threads": list(options.threads), "frames": options.frames, "duration": options.duration,
        "warmup": options.warmup, "library_tracks": options.library_tracks,
        "power_source": run.sampler.power_source, "notes": notes,
        "python": platform.python_version(), "torch": torch.__version__,
        "machine": platform.machine(), "argv": options.argv,
    }


def _finish(run: BenchRun, header: dict[str, Any], out_root: Path, board: str,
            interrupted: bool) -> dict[str, Any]:
    from rescnn_appliance.bench_report import (
        changes,
        format_table,
        group_summary,
        previous_summary,
        write_csv,
    )

    groups = []
    for g in run.groups:
        label = g["variant"] + (f" {g['condition']}" if g["condition"] else "")
        groups.append(group_summary(g, [s for s in run.seconds if s["variant"] == label]))
    run_info = {k: v for k, v in header.items() if k != "type"}
    run_info.update(interrupted=interrupted, ended=datetime.now(UTC).isoformat(
        timespec="seconds"))
    summary: dict[str, Any] = {"run": run_info, "groups": groups, "previous": None}
    found = previous_summary(out_root, board, run.run_dir)
    if found is not None:
        prev_dir, prev = found
        summary["previous"] = {"run": prev_dir.name, "changes": changes(groups, prev)}
    write_csv(run.run_dir / "summary.csv", groups)
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if run.options.plots:
        from rescnn_appliance.bench_plots import write_plots

        try:
            plots = write_plots(run.run_dir, run.groups, run.seconds, groups)
        except Exception as exc:
            log.exception("plots failed")
            plots = f"plots failed: {exc.__class__.__name__}: {exc}"
        summary["run"]["plots"] = plots
        (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(format_table(summary), flush=True)
    for note in header["notes"]:
        print(f"note: {note}", flush=True)
    return summary
