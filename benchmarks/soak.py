"""Soak: the real appliance at full speed for --minutes with faults injected on a schedule.

Real parts: an image-folder camera of the demo face (8 fps while a face is in view), the models
(models/ when trained, else freshly exported untrained ones), VLC with --aout=dummy playing short
generated clips, gpiozero MockFactory buttons, the SQLite file on disk. After a warm-up, one
fault every --fault-every seconds, in turn:

- camera drop: the camera folder is renamed away for 6 s, then back; recovered when frames flow
  again within 10 s of the return and the status no longer names a camera problem;
- bad track: every clip but the playing one is overwritten with garbage; recovered when each
  failure is marked and followed by a track start within 2 s (then the clips are restored);
- locked database: another process holds BEGIN EXCLUSIVE for 8 s while like is pressed 3 times;
  recovered when the queue is empty and the rows are in the file;
- button storm: 40 presses of like/skip/user 60 ms apart.

Reports resident memory growth after warm-up (target <= 5%), unhandled exceptions (target 0),
faults recovered, and acknowledged presses against feedback rows (every press recorded).

    .venv/bin/python benchmarks/soak.py --minutes 5 --out .cache/soak.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rescnn_appliance.config import load_settings
from rescnn_appliance.demo import demo_library
from tests.reliability_support import LockHolder, models_for_faults, write_demo_faces

log = logging.getLogger("soak")
MAX_RSS_GROWTH_PCT = 5.0


class Watch(logging.Handler):
    """Counts what the appliance logs: acknowledged presses, failures, tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.acked = {"like": 0, "skip": 0}
        self.tracebacks: list[str] = []
        self.cannot_play: list[float] = []
        self.playing: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            self.tracebacks.append(f"{record.name}: {text}")
        if record.name != "rescnn_appliance":
            return
        word = text.split(":", 1)[0]
        if word in self.acked and ": " in text:
            self.acked[word] += 1
        elif "cannot play" in text:
            self.cannot_play.append(record.created)
        elif text.startswith("playing "):
            self.playing.append(record.created)


def wait_until(check, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


class Soak:
    def __init__(self, work: Path, models: Path) -> None:
        from gpiozero.pins.mock import MockFactory

        from rescnn_appliance.appliance import Appliance
        from rescnn_appliance.music.library import Library

        self.camera = write_demo_faces(work / "camera")
        self.music = demo_library(work / "clips", seconds=4.0)
        self.originals = {p: p.read_bytes() for p in self.music.glob("*.flac")}
        self.settings = load_settings(None, {
            "camera.source": "folder", "camera.path": str(self.camera), "camera.fps": 8.0,
            "player.aout": "dummy", "playback.fade_s": 0.1, "library.folders": [str(self.music)],
            "library.scan_on_start": False, "service.state_dir": str(work / "state"),
            "models.dir": str(models), "mood.hold_s": 1.0, "mood.window_s": 2.0})
        self.db = self.settings.database_path
        lib = Library.open(self.db)
        lib.scan([self.music], progress=False, workers=1)
        for name in ("owner", "ana"):
            lib.add_user(name)
        lib.close()
        self.pins = MockFactory()
        self.app = Appliance(self.settings, pin_factory=self.pins)
        self.loop = threading.Thread(target=self.app.run, name="appliance-loop", daemon=True)
        self.pressed = 0

    def press(self, button: str, hold_s: float = 0.08) -> None:
        pin = self.pins.pin(getattr(self.settings.buttons, f"{button}_pin"))
        pin.drive_low(); time.sleep(hold_s); pin.drive_high()
        self.pressed += 1

    # --- faults: each returns (recovered, detail) -------------------------------------

    def camera_drop(self) -> tuple[bool, str]:
        away = self.camera.with_name("camera-away")
        self.camera.rename(away)
        lost = wait_until(lambda: bool(self.app.camera_problem), 15)
        time.sleep(6.0)
        frames = self.app.sensing.frames
        music_on = wait_until(lambda: self.app.now_playing is not None, 5) is not None
        away.rename(self.camera)
        back = wait_until(lambda: self.app.sensing.frames > frames + 2
                          and not self.app.camera_problem, 30)
        ok = lost is not None and back is not None and back <= 10.0 and music_on
        return ok, f"lost noticed {lost}, readings again after {back and round(back, 1)} s"

    def bad_track(self, watch: Watch) -> tuple[bool, str]:
        playing = self.app.now_playing
        keep = playing.path if playing else None
        for path in self.originals:
            if str(path) != keep:
                path.write_bytes(self.originals[path][:64] + bytes(range(256)) * 64)
        before = len(watch.cannot_play)
        failed = wait_until(lambda: len(watch.cannot_play) > before
                            and watch.playing[-1] > watch.cannot_play[-1], 60)
        time.sleep(0.5)
        gaps = []
        for t in watch.cannot_play[before:]:
            after = [p for p in watch.playing if p >= t]
            gaps.append(after[0] - t if after else float("inf"))
        for path, data in self.originals.items():  # the owner replaces the files; rescan
            path.write_bytes(data)
        # in another process, as `rescnn-appliance library scan` would: the soak measures the
        # appliance's memory, not the scan's
        subprocess.run([sys.executable, "-c", RESCAN, str(self.db), str(self.music)],
                       check=True, timeout=300, cwd=REPO)
        ok = failed is not None and bool(gaps) and max(gaps) <= 2.0
        return ok, f"{len(gaps)} failures, next start after <= {max(gaps, default=0):.2f} s"

    def locked_database(self, watch: Watch) -> tuple[bool, str]:
        before, acked = _count(self.db, "like"), watch.acked["like"]
        t0 = time.monotonic()
        with LockHolder(self.db):
            for _ in range(3):
                self.press("like")
                time.sleep(0.3)
            queued = wait_until(lambda: len(self.app.pending) >= 1, 20)
            time.sleep(max(0.0, 8.0 - (time.monotonic() - t0)))
        presses = watch.acked["like"] - acked  # acknowledged; one between tracks is ignored
        written = wait_until(lambda: _count(self.db, "like") - before >= presses, 60)
        ok = queued is not None and written is not None and presses >= 1
        return ok, (f"{presses} likes acknowledged, queued after {queued and round(queued, 1)} s, "
                    f"all in the file {written and round(written, 1)} s after the lock went")

    def button_storm(self) -> tuple[bool, str]:
        for i in range(40):
            self.press(("like", "skip", "like", "user")[i % 4], 0.06)
            time.sleep(0.06)
        ok = wait_until(lambda: not self.app.pending, 30) is not None
        return ok, "40 presses"


RESCAN = """
import sys
from rescnn_appliance.music.library import Library
lib = Library.open(sys.argv[1])
lib.scan([sys.argv[2]], progress=False, workers=1)
lib.close()
"""


def _count(db: Path, kind: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("select count(*) from feedback where kind = ?", (kind,)).fetchone()[0]


def read_smaps() -> dict[str, int]:
    """Resident kB of this process by mapping name; anonymous mappings by the 64 MiB-aligned
    block they lie in (glibc gives each thread arena such a block, and grows it in place)."""
    resident: dict[str, int] = {}
    key = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start = int(head[0].split("-")[0], 16)
            key = head[5] if len(head) > 5 else f"[anon 64 MiB block {start >> 26:#x}]"
        elif head and head[0] == "Rss:":
            resident[key] = resident.get(key, 0) + int(head[1])
    return resident


def smaps_growth(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Where resident memory grew between two :func:`read_smaps`, largest first."""
    grown = sorted(((kb - before.get(key, 0), key) for key, kb in after.items()), reverse=True)
    lines = [f"+{kb} kB {key}{'' if key in before else ' (new)'}" for kb, key in grown[:12]
             if kb >= 256]
    shrunk = sum(kb for kb, _ in grown if kb < 0)
    return [*lines, f"{shrunk} kB where memory shrank"]


def rollup() -> dict[str, int]:
    """``/proc/self/smaps_rollup`` in kB: Rss, Anonymous, Private_Dirty, ..."""
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup-s", type=float, default=None, help="default: 20%% of the run, "
                    "at most 300 s")
    ap.add_argument("--fault-every", type=float, default=30.0, help="seconds between faults")
    ap.add_argument("--faults", default="camera_drop,bad_track,locked_database,button_storm",
                    help="which faults, in turn (comma-separated)")
    ap.add_argument("--models", type=Path, default=None, help="default: models/ or exported")
    ap.add_argument("--diagnose", action="store_true", help="tracemalloc and /proc/self/smaps "
                    "growth from warm-up to the end, in the report (slower)")
    ap.add_argument("--out", type=Path, default=REPO / ".cache" / "soak-last.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("rescnn_appliance").setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    watch = Watch()
    logging.getLogger().addHandler(watch)
    crashes: list[str] = []
    threading.excepthook = lambda a: crashes.append(f"{a.thread.name}: {a.exc_type.__name__}: "
                                                    f"{a.exc_value}")
    total_s = args.minutes * 60.0
    warmup_s = args.warmup_s if args.warmup_s is not None else min(300.0, 0.2 * total_s)
    work = Path(tempfile.mkdtemp(prefix="rescnn-soak-"))
    models = args.models or models_for_faults(work / "models")
    soak = Soak(work, models)
    me = psutil.Process()
    soak.app.start()
    soak.loop.start()
    started = time.monotonic()
    rss: list[tuple[float, int]] = []
    threads: list[tuple[int, int]] = []
    faults: list[dict] = []
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    next_fault, n = started + warmup_s, 0
    last_sample = 0.0
    diag: dict = {"rollup": []}
    try:
        while time.monotonic() - started < total_s and soak.loop.is_alive():
            now = time.monotonic()
            if now - last_sample >= 5.0 or now >= next_fault:  # and just before each fault
                rss.append((now - started, me.memory_info().rss))
                if args.diagnose:
                    diag["rollup"].append((round(now - started), rollup()))
                    if "smaps" not in diag and now - started >= warmup_s:
                        import tracemalloc
                        diag["smaps"] = read_smaps()
                        tracemalloc.start(8)
                        diag["heap"] = tracemalloc.take_snapshot()
                threads.append((round(now - started), me.num_threads()))
                last_sample = now
            if now >= next_fault and now - started < total_s - 20:
                kind = kinds[n % len(kinds)]
                t0 = time.monotonic()
                ok, detail = (getattr(soak, kind)(watch) if kind in ("bad_track",
                              "locked_database") else getattr(soak, kind)())
                faults.append({"at_s": round(t0 - started), "kind": kind, "recovered": ok,
                               "detail": detail, "took_s": round(time.monotonic() - t0, 1)})
                print(f"[{t0 - started:6.0f} s] {kind}: {'recovered' if ok else 'NOT RECOVERED'}"
                      f" ({detail})", flush=True)
                n += 1
                next_fault = time.monotonic() + args.fault_every
            time.sleep(0.2)
        wait_until(lambda: not soak.app.pending, 30)
        if "smaps" in diag:
            import tracemalloc
            heap = tracemalloc.take_snapshot().compare_to(diag["heap"], "traceback")
            diag["python_heap_growth"] = [
                f"{d.size_diff / 1024:+.0f} kB in {d.count_diff:+d} blocks at "
                + " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in d.traceback[::-1][:5])
                for d in heap[:15]]
            diag["native_growth"] = smaps_growth(diag["smaps"], read_smaps())
            tracemalloc.stop()
        alive = soak.loop.is_alive()
        frames = soak.app.sensing.frames
    finally:
        soak.app.request_stop("soak over")
        soak.loop.join(20)
        soak.app.close()
    rows = {k: _count(soak.db, k) for k in ("like", "skip")}
    after = [r for t, r in rss if t >= warmup_s]
    base = after[0] if after else rss[-1][1]
    end = sum(r for _, r in rss[-3:]) / len(rss[-3:])
    report = {
        "minutes": round((time.monotonic() - started) / 60, 1), "warmup_s": warmup_s,
        "models": str(models), "load_avg": os.getloadavg(),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "rss_mb_at_warmup": round(base / 2**20, 1), "rss_mb_end": round(end / 2**20, 1),
        "rss_mb_max": round(max(r for _, r in rss) / 2**20, 1),
        "rss_growth_pct": round(100 * (end - base) / base, 2),
        "unhandled": crashes + watch.tracebacks, "loop_alive_to_the_end": alive,
        "faults": faults, "faults_recovered": sum(f["recovered"] for f in faults),
        "presses": soak.pressed, "acknowledged": watch.acked, "rows": rows,
        "every_press_recorded": all(rows[k] >= watch.acked[k] for k in rows),
        "frames_analysed": frames,
        "rss_samples": [(round(t), round(r / 2**20, 1)) for t, r in rss],
        "thread_samples": threads,
    }
    if "smaps" in diag:
        report["diagnosis"] = {k: diag[k] for k in ("python_heap_growth", "native_growth")}
        report["diagnosis"]["rollup_kb"] = [(t, {k: r[k] for k in ("Rss", "Anonymous",
                                             "Private_Dirty", "Swap") if k in r})
                                            for t, r in diag["rollup"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("rss_samples", "faults", "thread_samples")},
                     indent=1))
    shutil.rmtree(work, ignore_errors=True)
    failed = failures(report, len(faults))
    report["failed"] = failed
    args.out.write_text(json.dumps(report, indent=1))
    for line in failed:
        print(f"FAILED: {line}")
    print(f"soak {'FAILED' if failed else 'passed'} ({report['minutes']} min, RSS "
          f"{report['rss_mb_at_warmup']} -> {report['rss_mb_end']} MB, "
          f"{report['rss_growth_pct']:+.2f}%, {report['faults_recovered']}/{len(faults)} faults "
          f"recovered); full report in {args.out}")
    return 1 if failed else 0


def failures(report: dict, injected: int) -> list[str]:
    """Each target the run missed, as one line (empty: passed)."""
    out = []
    if report["rss_growth_pct"] > MAX_RSS_GROWTH_PCT:
        out.append(f"resident memory grew {report['rss_growth_pct']:.2f}% after warm-up "
                   f"({report['rss_mb_at_warmup']} -> {report['rss_mb_end']} MB; target "
                   f"<= {MAX_RSS_GROWTH_PCT:g}%)")
    if report["unhandled"]:
        out.append(f"{len(report['unhandled'])} unhandled exceptions, first: "
                   f"{report['unhandled'][0]}")
    if not report["loop_alive_to_the_end"]:
        out.append("the appliance loop died before the end")
    if report["faults_recovered"] != injected:
        missed = [f"{f['kind']} at {f['at_s']} s ({f['detail']})" for f in report["faults"]
                  if not f["recovered"]]
        out.append(f"{len(missed)} of {injected} faults not recovered: {'; '.join(missed)}")
    if not report["every_press_recorded"]:
        out.append(f"presses acknowledged {report['acknowledged']} but rows {report['rows']}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
