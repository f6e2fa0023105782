"""How much the bench itself costs the pipeline it measures (target: at most 3%), and its p50.

Runs the same pipeline (face finder, both models, mood tracker, recommender over a generated
library) on the same 640x480 replay frames (demo scenes written as PNG, read back by
``ImageFolderSource``, one thread), in alternating blocks:

- bare: ``source.read()`` then :meth:`BenchPipeline.process` (no clock reads, no log);
- bench: the bench's own loop (:meth:`BenchRun.frames_variant`): clock reads per stage, a JSON
  line per frame, the per-second sampler thread (psutil, sysfs, power estimate) and its log.

Overhead is reported on process CPU time per frame (what the bench adds to this process's work;
robust to other processes on a loaded machine) and on wall time per frame, as the median over
rounds of bench/bare - 1. The direct cost of the instrumentation (one ``_record`` and the clock
reads, and one sampler sample per second) is also timed on its own, as a cross-check.

Example::

    $ .venv/bin/python benchmarks/bench_overhead.py --models models --rounds 6 --block 60
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rescnn_appliance.bench import (
    BenchOptions,
    BenchRun,
    JsonLines,
    Stopper,
    _new_group,
)
from rescnn_appliance.bench_pipeline import BenchPipeline, generated_library
from rescnn_appliance.config import load_settings
from rescnn_appliance.tracking import MoodTracker
from rescnn_appliance.vision.affect import AffectModel
from rescnn_appliance.vision.demo_frames import DemoSource
from rescnn_appliance.vision.faces import FaceFinder
from rescnn_appliance.vision.frames import ImageFolderSource


def write_replay(folder: Path, n: int) -> Path:
    demo = DemoSource(640, 480, fps=0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), demo.scene(2.0 + i / 8))
    return folder


def bare_block(source: ImageFolderSource, pipeline: BenchPipeline, n: int) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    done = 0
    while done < n:
        frame = source.read()
        if frame is not None:
            pipeline.process(frame.image, frame.t)
            done += 1
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def bench_block(run: BenchRun, source: ImageFolderSource, pipeline: BenchPipeline,
                n: int) -> tuple[float, float, list[float]]:
    c0, w0 = time.process_time(), time.perf_counter()
    run.frames_variant(source, pipeline, "fp32", 1)
    group = run.groups[-1]
    assert group["frames"] == n
    return ((time.process_time() - c0) / n, (time.perf_counter() - w0) / n,
            group["ms"]["end_to_end"])


def direct_costs(run: BenchRun, repeats: int = 2000) -> dict[str, float]:
    """CPU microseconds of one frame's bookkeeping and of one per-second sample."""
    group = _new_group("fp32", 1, "direct")
    times = {"face": True, "capture": 1.0, "faces": 1.0, "preprocess": 0.1, "ecnn": 1.0,
             "va": 1.0, "mood": 0.05, "track": 0.1, "end_to_end": 3.0, "pred": 3}
    run._bar = type("NoBar", (), {"update": lambda self, n: None})()
    t0 = time.process_time()
    for _ in range(repeats):
        for _ in range(8):       # the clock reads of one frame
            time.perf_counter()
        time.thread_time()
        time.thread_time()
        run._record(group, dict(times), time.monotonic())
    per_frame = (time.process_time() - t0) / repeats * 1e6
    t0 = time.process_time()
    for _ in range(20):
        run.sampler.sample()
    per_sample = (time.process_time() - t0) / 20 * 1e6
    return {"record_us_per_frame": round(per_frame, 2), "sample_us_per_second": round(per_sample, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=None, help="models folder (models.dir)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block", type=int, default=60, help="frames per block")
    ap.add_argument("--replay-frames", type=int, default=40)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    overrides = {"models.dir": str(args.models)} if args.models else {}
    settings = load_settings(None, overrides)
    cv2.setNumThreads(1)
    model = AffectModel.load(settings.models_dir, args.precision, threads=1)
    with tempfile.TemporaryDirectory() as tmp, generated_library(settings) as rec:
        tmp_path = Path(tmp)
        (tmp_path / "replay").mkdir()
        replay = write_replay(tmp_path / "replay", args.replay_frames)
        source = ImageFolderSource(replay, loop=True).open()

        def pipeline() -> BenchPipeline:
            return BenchPipeline(FaceFinder.from_settings(settings.faces), model,
                                 MoodTracker.from_settings(settings.mood, rec.model.mood_of), rec)

        options = BenchOptions(frames=args.block, warmup=0, progress=False,
                               vcgencmd=None)
        with (tmp_path / "log.jsonl").open("w", buffering=1 << 16) as fh:
            run = BenchRun(settings, options, tmp_path, JsonLines(fh), Stopper())
            bare_block(source, pipeline(), 10)  # warm up torch and the caches
            run.sampler.start()
            cpu_ratios, wall_ratios, e2e, bare_cpu = [], [], [], []
            for r in range(args.rounds):
                order = ("bare", "bench") if r % 2 == 0 else ("bench", "bare")
                got = {}
                for kind in order:
                    if kind == "bare":
                        got[kind] = bare_block(source, pipeline(), args.block)
                    else:
                        cpu, wall, ms = bench_block(run, source, pipeline(), args.block)
                        got[kind] = (cpu, wall)
                        e2e.extend(ms)
                bare_cpu.append(got["bare"][0])
                cpu_ratios.append(got["bench"][0] / got["bare"][0] - 1)
                wall_ratios.append(got["bench"][1] / got["bare"][1] - 1)
                print(f"round {r}: bare {got['bare'][1] * 1e3:.2f} ms/frame wall "
                      f"({got['bare'][0] * 1e3:.2f} CPU), bench {got['bench'][1] * 1e3:.2f} wall "
                      f"({got['bench'][0] * 1e3:.2f} CPU)", flush=True)
            run.sampler.stop()
            direct = direct_costs(run)
        source.close()
    frame_us = statistics.median(bare_cpu) * 1e6
    result = {
        "rounds": args.rounds, "block": args.block, "precision": args.precision,
        "overhead_cpu_pct_median": round(100 * statistics.median(cpu_ratios), 2),
        "overhead_wall_pct_median": round(100 * statistics.median(wall_ratios), 2),
        "overhead_cpu_pct_rounds": [round(100 * x, 2) for x in cpu_ratios],
        "end_to_end_p50_ms": round(float(np.percentile(e2e, 50)), 3),
        "end_to_end_p95_ms": round(float(np.percentile(e2e, 95)), 3),
        "bare_cpu_ms_per_frame": round(frame_us / 1e3, 3),
        **direct,
        # bookkeeping of a frame over the bare frame, plus one sample's share of each second
        "overhead_direct_pct": round(100 * direct["record_us_per_frame"] / frame_us
                                     + 100 * direct["sample_us_per_second"] / 1e6, 3),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
