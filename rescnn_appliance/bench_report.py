"""Turn a bench run's frames and seconds into its summary, its CSV and the terminal table.

A *group* is what one row block of the table describes: one model variant (precision and
threads) and, with a labelled set, one test condition. :func:`group_summary` gives p50, p95, p99
and max per stage, the frame rate, the system figures of the seconds it ran, the energy per
frame and (labelled sets) accuracy and the confusion matrix. :func:`previous_summary` finds the
last run on the same board, and :func:`changes` compares with it.

Example::

    >>> stage_stats([1.0, 2.0, 3.0, 4.0])["p50"]
    2.5
    >>> format_change(10.0, 12.0)
    '+20.0%'
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rescnn_appliance.bench_labelled import scores
from rescnn_appliance.bench_pipeline import LATENCIES
from rescnn_appliance.vision.affect import EMOTIONS

log = logging.getLogger(__name__)
PERCENTILES = (50, 95, 99)


def stage_stats(values: Sequence[float]) -> dict[str, float] | None:
    """n, mean, p50, p95, p99 and max (milliseconds, 4 decimals); None without values."""
    if not len(values):
        return None
    a = np.asarray(values, dtype=float)
    out = {"n": int(a.size), "mean": float(a.mean())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(a, PERCENTILES))})
    out["max"] = float(a.max())
    return {k: (v if k == "n" else round(v, 4)) for k, v in out.items()}


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(sum(vals) / len(vals), 3) if vals else None


def _max(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return max(vals) if vals else None


def system_summary(seconds: list[dict[str, Any]], fps: float | None) -> dict[str, Any]:
    """Means and peaks of the per-second samples of one group; energy per frame in joules."""
    power = _mean(s.get("power_w") for s in seconds)
    sources = sorted({s["power_source"] for s in seconds if s.get("power_source")})
    out = {
        "samples": len(seconds),
        "process_cpu_pct": _mean(s.get("process_cpu_pct") for s in seconds),
        "system_cpu_pct": _mean(s.get("system_cpu_pct") for s in seconds),
        "rss_mb_max": _max(s.get("rss_mb") for s in seconds),
        "temp_c_max": _max(s.get("temp_c") for s in seconds),
        "freq_mhz_mean": _mean(s.get("freq_mhz") for s in seconds),
        "throttled": sorted({s["throttled_text"] for s in seconds if s.get("throttled_text")}),
        "power_w_mean": power,
        "power_estimated": any(s.get("power_estimated") for s in seconds) if seconds else None,
        "power_source": sources[0] if len(sources) == 1 else sources or None,
        "energy_per_frame_j": round(power / fps, 6) if power is not None and fps else None,
    }
    return out


def group_summary(group: dict[str, Any], seconds: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of one group (see the module docstring) from what the bench loop collected."""
    wall = group["wall_s"]
    fps = round(group["frames"] / wall, 3) if wall > 0 and group["frames"] else None
    out = {k: group[k] for k in ("variant", "precision", "threads", "condition", "frames",
                                 "faces", "dropped", "wall_s")}
    out["fps"] = fps
    out["stages"] = {s: stage_stats(group["ms"][s]) for s in LATENCIES if group["ms"].get(s)}
    out["system"] = system_summary(seconds, fps)
    if group.get("labels"):
        matrix = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
        np.add.at(matrix, (np.asarray(group["labels"]), np.asarray(group["preds"])), 1)
        out["accuracy"] = scores(matrix)
        out["confusion"] = matrix.tolist()
    return out


def write_csv(path: Path, groups: list[dict[str, Any]]) -> None:
    """One row per group and stage: n, mean, p50, p95, p99, max (ms), fps and power."""
    fields = ["variant", "precision", "threads", "condition", "stage", "n", "mean_ms", "p50_ms",
              "p95_ms", "p99_ms", "max_ms", "fps", "power_w", "power_estimated", "accuracy"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for g in groups:
            for stage, st in g["stages"].items():
                writer.writerow([g["variant"], g["precision"], g["threads"], g["condition"] or "",
                                 stage, st["n"], st["mean"], st["p50"], st["p95"], st["p99"],
                                 st["max"], g["fps"], g["system"]["power_w_mean"],
                                 g["system"]["power_estimated"],
                                 g.get("accuracy", {}).get("accuracy", "")])


def previous_summary(out_root: Path, board: str, current: Path) -> tuple[Path, dict] | None:
    """The latest earlier run under ``out_root`` on ``board`` (folder names sort by time)."""
    for run_dir in sorted((p for p in out_root.iterdir() if p.is_dir() and p != current),
                          key=lambda p: p.name, reverse=True):
        if run_dir.name >= current.name:
            continue
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        if summary.get("run", {}).get("board") == board and summary.get("groups"):
            return run_dir, summary
    return None


def format_change(before: float | None, now: float | None) -> str:
    if not before or now is None:
        return "n/a"
    return f"{(now - before) / before * 100:+.1f}%"


def changes(groups: list[dict[str, Any]], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """p50 per stage and fps against the previous run, for groups present in both."""
    before = {(g["variant"], g["condition"]): g for g in previous.get("groups", [])}
    out = []
    for g in groups:
        old = before.get((g["variant"], g["condition"]))
        if old is None:
            continue
        for stage, st in g["stages"].items():
            was = (old.get("stages", {}).get(stage) or {}).get("p50")
            if was is not None:
                out.append({"variant": g["variant"], "condition": g["condition"], "measure":
                            f"{stage} p50 ms", "before": was, "now": st["p50"],
                            "change": format_change(was, st["p50"])})
        out.append({"variant": g["variant"], "condition": g["condition"], "measure": "fps",
                    "before": old.get("fps"), "now": g["fps"],
                    "change": format_change(old.get("fps"), g["fps"])})
    return out


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def format_table(summary: dict[str, Any]) -> str:
    """The terminal table: stage percentiles per group, system line, accuracy, changes."""
    run = summary["run"]
    lines = [f"bench {run['id']}  board: {run['board']}  source: {run['source']}"
             + ("  (interrupted)" if run.get("interrupted") else "")]
    head = f"{'variant':<10} {'condition':<13} {'stage':<14} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  ms"
    lines.append(head)
    for g in summary["groups"]:
        for stage, st in g["stages"].items():
            lines.append(f"{g['variant']:<10} {g['condition'] or '-':<13} {stage:<14} "
                         f"{st['p50']:>8.2f} {st['p95']:>8.2f} {st['p99']:>8.2f} {st['max']:>8.2f}")
        s = g["system"]
        est = " (estimated)" if s["power_estimated"] else ""
        lines.append(f"{'':<10} {'':<13} {g['frames']} frames, {g['faces']} faces, "
                     f"{_num(g['fps'], '{:.1f}')} fps; CPU {_num(s['process_cpu_pct'], '{:.0f}')}% "
                     f"process, {_num(s['system_cpu_pct'], '{:.0f}')}% system; RSS "
                     f"{_num(s['rss_mb_max'], '{:.0f}')} MB; {_num(s['temp_c_max'], '{:.1f}')} C; "
                     f"{_num(s['freq_mhz_mean'], '{:.0f}')} MHz; {_num(s['power_w_mean'])} W{est}, "
                     f"{_num(s['energy_per_frame_j'], '{:.4f}')} J/frame"
                     + (f"; throttling: {', '.join(s['throttled'])}" if s["throttled"] else ""))
    labelled = [g for g in summary["groups"] if "accuracy" in g]
    if labelled:
        lines.append("")
        lines.append(f"{'variant':<10} {'condition':<13} {'faces':>6} {'accuracy':>9} "
                     f"{'macro-F1':>9} {'e2e p50 ms':>11}")
        for g in labelled:
            e2e = (g["stages"].get("end_to_end") or {}).get("p50")
            lines.append(f"{g['variant']:<10} {g['condition']:<13} {g['faces']:>6} "
                         f"{g['accuracy']['accuracy']:>9.4f} {g['accuracy']['macro_f1']:>9.4f} "
                         f"{_num(e2e):>11}")
    lines.append(f"power: {run.get('power_source')}")
    prev = summary.get("previous")
    if prev:
        lines.append("")
        lines.append(f"change against the previous run on this board ({prev['run']}):")
        for c in prev["changes"]:
            if c["measure"].startswith(("reading", "end_to_end", "fps")):
                lines.append(f"  {c['variant']:<10} {c['condition'] or '-':<13} {c['measure']:<18} "
                             f"{_num(c['before'])} -> {_num(c['now'])}  {c['change']}")
    else:
        lines.append("no previous run on this board to compare with")
    lines.append(f"written to {run['dir']}")
    return "\n".join(lines)
