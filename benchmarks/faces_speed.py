"""Time the frame -> face crop path on one core: full-frame search, window search, crop.

Frames come from the demo source (the public-domain astronaut drifting, zooming and changing
light over a 640x480 room), so successive frames move the way a sitting listener does.

    .venv/bin/python benchmarks/faces_speed.py [--frames 400] [--fps 8]

Prints p50/p90 milliseconds for: the full-frame search (what runs while nobody is tracked),
a tracked frame (window search + 48x48 crop, what runs every frame while a face is in view),
the crop alone, and an empty room read at ``--idle-fps`` (what runs while nobody is in view,
with unchanged frames skipped). Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other
processes competing for the cores do not inflate them; ``--clock wall`` measures wall time.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from rescnn_appliance.vision.demo_frames import DemoSource
from rescnn_appliance.vision.faces import FaceFinder


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int] | None) -> float:
    if b is None:
        return 0.0
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--fps", type=float, default=8.0, help="demo time step between frames")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (1: one core)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--idle-fps", type=float, default=1.0,
                        help="frame rate with nobody in view (camera.idle_fps)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    demo = DemoSource(640, 480, fps=0, present_s=1e9)  # face always in view
    times = [i / args.fps for i in range(args.frames)]
    frames = [demo.scene(t) for t in times]

    full = FaceFinder()
    full_ms = []
    for frame in frames[: max(50, args.frames // 4)]:
        full.reset()
        t = clock()
        full.find(frame)
        full_ms.append((clock() - t) * 1e3)

    tracker = FaceFinder()
    tracked_ms, crop_ms, searches, overlaps = [], [], [], []
    for t_scene, frame in zip(times, frames):
        t = clock()
        face = tracker.find(frame)
        if face is not None:
            t_crop = clock()
            face.crop(48)
            crop_ms.append((clock() - t_crop) * 1e3)
            overlaps.append(iou(face.box, demo.face_box(t_scene)))
        elapsed = (clock() - t) * 1e3
        searches.append(tracker.last_search)
        if tracker.last_search == "window":
            tracked_ms.append(elapsed)

    # Nobody in view: the demo's empty room (its light keeps changing) read at idle_fps.
    away = DemoSource(640, 480, fps=0, present_s=0.0, absent_s=1e9)
    idle = FaceFinder()
    idle_ms, idle_searches = [], []
    for i in range(120):
        frame = away.scene(i / args.idle_fps)
        t = clock()
        idle.find(frame)
        idle_ms.append((clock() - t) * 1e3)
        idle_searches.append(idle.last_search)
    idle_mean = float(np.mean(idle_ms))

    window_share = searches.count("window") / len(searches)
    print(f"OpenCV {cv2.__version__}, threads={cv2.getNumThreads()}, frames 640x480, "
          f"{args.frames} demo frames at {args.fps} fps, {args.clock} time")
    for name, values in (("full-frame search", full_ms),
                         ("tracked frame (window search + crop)", tracked_ms),
                         ("crop 48x48 alone", crop_ms),
                         ("empty room frame", idle_ms)):
        print(f"{name:38s} p50 {percentile(values, 50):6.2f} ms   p90 {percentile(values, 90):6.2f}"
              f" ms   (n={len(values)})")
    print(f"face found in {len(overlaps)}/{len(frames)} frames; overlap with where the demo drew "
          f"it (IoU): p50 {percentile(overlaps, 50):.2f}, p10 {percentile(overlaps, 10):.2f}")
    print(f"frames tracked through the window: {window_share:.1%} "
          f"(others: { {s: searches.count(s) for s in set(searches) if s != 'window'} })")
    print(f"empty room at {args.idle_fps} fps: {idle_searches.count('unchanged')}/"
          f"{len(idle_searches)} frames skipped as unchanged, mean {idle_mean:.2f} ms a frame "
          f"= {idle_mean * args.idle_fps / 10:.2f}% of one core for face finding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
