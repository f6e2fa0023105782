"""Memory layout of the exported fp32 TorchScript: NCHW against channels-last frozen weights.

For each trained checkpoint, traces and freezes the network twice, with contiguous (NCHW) and with
channels-last weights, checks both give the same output, and times one face on one thread
(CPU time, median of 300 after 30 warm-up runs). The export uses whichever layout this shows
faster. Writes benchmarks/export_layout.json and prints a Markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export_layout.py
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from rescnn_appliance.training.ship import load_best

REPO = Path(__file__).resolve().parent.parent


def cpu_ms(module: torch.jit.ScriptModule, x: torch.Tensor, runs: int = 300) -> float:
    with torch.inference_mode():
        for _ in range(30):
            module(x)
        times = []
        for _ in range(runs):
            t = time.process_time()
            module(x)
            times.append(time.process_time() - t)
    return float(np.median(times) * 1000)


def frozen(model: torch.nn.Module, layout: torch.memory_format, x: torch.Tensor) -> torch.jit.ScriptModule:
    model = copy.deepcopy(model).eval().to(memory_format=layout)
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(model, x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("export_layout.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in ("ecnn", "va"):
        model, history = load_best(args.checkpoints / name)
        size = int(history["config"]["input_size"])
        x = torch.randn(1, 1, size, size)
        nchw = frozen(model, torch.contiguous_format, x)
        nhwc = frozen(model, torch.channels_last, x)
        with torch.inference_mode():
            diff = float((nchw(x) - nhwc(x)).abs().max())
        rows.append({"model": name, "input": size, "nchw_ms": cpu_ms(nchw, x), "channels_last_ms": cpu_ms(nhwc, x),
                     "max_abs_diff": diff})
    args.out.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print("| model | NCHW ms | channels-last ms | speed-up | max abs diff |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} ({r['input']}x{r['input']}) | {r['nchw_ms']:.2f} | {r['channels_last_ms']:.2f} | "
              f"{r['nchw_ms'] / r['channels_last_ms']:.2f}x | {r['max_abs_diff']:.1e} |")


if __name__ == "__main__":
    main()
