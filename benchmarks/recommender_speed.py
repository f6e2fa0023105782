"""Next-track decision time with 10,000 tracks and 50,000 feedback rows (target: <= 10 ms).

    .venv/bin/python benchmarks/recommender_speed.py [--tracks 10000] [--feedback 50000]

Builds a real SQLite library in a temporary folder, then times ``Recommender.next_track`` with
a feedback row recorded between choices (as the appliance does), and the first load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from rescnn_appliance.config import load_settings
from rescnn_appliance.mood import MOODS
from rescnn_appliance.music.db import Feedback, Track
from rescnn_appliance.music.library import Library
from rescnn_appliance.music.recommend import Recommender


def build(path: Path, n_tracks: int, n_feedback: int, n_users: int, seed: int = 0) -> Library:
    rng = np.random.default_rng(seed)
    lib = Library.open(path)
    va = np.clip(rng.normal(0, 0.5, (n_tracks, 2)), -1, 1)
    with lib.session() as s:
        s.execute(insert(Track), [
            {"path": f"/music/{i // 10}/{i}.flac", "title": f"t{i}", "artist": f"a{i // 10}",
             "genre": f"g{i // 10 % 40}", "status": "ok", "va_source": "audio", "valence": float(v), "arousal": float(a)}
            for i, (v, a) in enumerate(va)])
    for u in range(n_users):
        lib.add_user(f"user{u}")
    kinds = np.array(["like", "skip", "complete", "never"])
    with lib.session() as s:
        s.execute(insert(Feedback), [
            {"user_id": int(rng.integers(1, n_users + 1)), "track_id": int(rng.integers(1, n_tracks + 1)),
             "kind": str(kinds[rng.choice(4, p=[0.35, 0.3, 0.33, 0.02])]),
             "mood": MOODS[int(rng.integers(0, 4))]} for _ in range(n_feedback)])
    lib.refit_moods()
    return lib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--feedback", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--choices", type=int, default=300)
    args = ap.parse_args()
    settings = load_settings(None)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp) / "lib.sqlite", args.tracks, args.feedback, args.users)
        rec = Recommender(lib, settings.recommend, settings.playback, seed=0)
        t0, c0 = time.perf_counter(), time.thread_time()
        rec.refresh()
        load_ms = (time.perf_counter() - t0) * 1000
        load_cpu_ms = (time.thread_time() - c0) * 1000
        choose, choose_cpu, record = [], [], []
        for i in range(args.choices):
            user = f"user{i % args.users}"
            v, a = rng.uniform(-1, 1, 2)
            t0, c0 = time.perf_counter(), time.thread_time()
            c = rec.next_track(user, v, a)
            choose.append(time.perf_counter() - t0)
            choose_cpu.append(time.thread_time() - c0)
            t0 = time.perf_counter()
            lib.record_feedback(user, c.track_id, ("like", "skip", "complete")[i % 3], v, a, c.mood)
            record.append(time.perf_counter() - t0)
        choose_ms, record_ms = np.array(choose) * 1000, np.array(record) * 1000
        print(f"tracks {args.tracks}, feedback rows {args.feedback}, users {args.users}")
        print(f"first load (tracks + all feedback): {load_ms:.0f} ms (CPU {load_cpu_ms:.0f} ms)")
        print(f"next_track: median {np.median(choose_ms):.2f} ms, p95 "
              f"{np.percentile(choose_ms, 95):.2f} ms, max {choose_ms.max():.2f} ms "
              f"({args.choices} choices)")
        cpu_ms = np.array(choose_cpu) * 1000
        print(f"next_track CPU time: median {np.median(cpu_ms):.2f} ms, p95 "
              f"{np.percentile(cpu_ms, 95):.2f} ms (wall time above includes waiting for a core)")
        print(f"record_feedback (commit): median {np.median(record_ms):.2f} ms, p95 "
              f"{np.percentile(record_ms, 95):.2f} ms")
        lib.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
