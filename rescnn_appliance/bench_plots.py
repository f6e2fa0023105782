"""PNG plots of a bench run, drawn with matplotlib's Agg backend (no display needed).

- ``latency_hist.png``: a latency histogram per stage, one colour per group;
- ``timeline.png``: end-to-end latency of every frame, process and system CPU, temperature and
  power against time since the start;
- ``confusion_<variant>.png``: with a labelled set, one confusion matrix per test condition.

Without matplotlib (it is in the ``train`` extra) :func:`write_plots` returns a one-line note
instead, and the rest of the run is kept.

Example::

    >>> write_plots(run_dir, frames, seconds, summary)   # doctest: +SKIP
    ['latency_hist.png', 'timeline.png']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rescnn_appliance.bench_pipeline import LATENCIES
from rescnn_appliance.vision.affect import EMOTIONS


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _key(g: dict[str, Any]) -> str:
    return g["variant"] + (f" {g['condition']}" if g.get("condition") else "")


def latency_histograms(path: Path, groups: list[dict[str, Any]]) -> None:
    plt = _pyplot()
    stages = [s for s in LATENCIES if any(g["ms"].get(s) for g in groups)]
    cols = 3
    rows = max(1, (len(stages) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, stage in zip(axes.flat, stages):
        for g in groups:
            values = np.asarray(g["ms"].get(stage) or [], float)
            if values.size:
                hi = np.percentile(values, 99.5)
                ax.hist(np.clip(values, 0, hi), bins=40, alpha=0.5, label=_key(g))
        ax.set_title(stage)
        ax.set_xlabel("ms")
    for ax in list(axes.flat)[len(stages):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def timeline(path: Path, groups: list[dict[str, Any]], seconds: list[dict[str, Any]]) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    for g in groups:
        t, e2e = g.get("t") or [], g["ms"].get("end_to_end") or []
        n = min(len(t), len(e2e))
        if n:
            axes[0].plot(t[:n], e2e[:n], ".", ms=2, label=_key(g))
    axes[0].set_ylabel("end-to-end ms")
    if len(groups) <= 8:
        axes[0].legend(fontsize=7)
    ts = [s["t"] for s in seconds]
    axes[1].plot(ts, [s.get("process_cpu_pct") for s in seconds], label="process (% of a core)")
    axes[1].plot(ts, [s.get("system_cpu_pct") for s in seconds], label="system (% of all)")
    axes[1].set_ylabel("CPU %")
    axes[1].legend(fontsize=7)
    temps = [s.get("temp_c") for s in seconds]
    axes[2].plot(ts, [np.nan if v is None else v for v in temps])
    axes[2].set_ylabel("CPU °C" + ("" if any(v is not None for v in temps) else " (no sensor)"))
    power = [s.get("power_w") for s in seconds]
    est = any(s.get("power_estimated") for s in seconds)
    axes[3].plot(ts, [np.nan if v is None else v for v in power])
    axes[3].set_ylabel("power W" + (" (estimated)" if est else ""))
    axes[3].set_ylim(bottom=0)
    axes[3].set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def confusion_matrices(path: Path, groups: list[dict[str, Any]]) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        m = np.asarray(g["confusion"], float)
        rows = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(EMOTIONS)):
            for j in range(len(EMOTIONS)):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if rows[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=60, fontsize=7)
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS, fontsize=7)
        ax.set_title(f"{g['condition']}: acc {g['accuracy']['accuracy']:.3f}", fontsize=9)
        ax.set_xlabel("predicted")
    axes.flat[0].set_ylabel("true")
    fig.suptitle(groups[0]["variant"])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(run_dir: Path, raw_groups: list[dict[str, Any]], seconds: list[dict[str, Any]],
                summary_groups: list[dict[str, Any]]) -> list[str] | str:
    """Write every plot into ``run_dir``; the file names, or a note why there are none."""
    try:
        _pyplot()
    except ImportError:
        return "no plots: matplotlib is not installed (pip install matplotlib)"
    written = []
    if any(g["frames"] for g in raw_groups):
        latency_histograms(run_dir / "latency_hist.png", raw_groups)
        written.append("latency_hist.png")
    timeline(run_dir / "timeline.png", raw_groups, seconds)
    written.append("timeline.png")
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for g in summary_groups:
        if "confusion" in g:
            by_variant.setdefault(g["variant"], []).append(g)
    for variant, gs in by_variant.items():
        name = f"confusion_{variant.replace('/', '-')}.png"
        confusion_matrices(run_dir / name, gs)
        written.append(name)
    return written
