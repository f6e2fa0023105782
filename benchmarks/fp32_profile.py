"""Where the shipped models' fp32 time goes, one face on one thread (torch.profiler).

    .venv/bin/python benchmarks/fp32_profile.py [--models models] [--rows 12] [--runs 100]

For each network: the median latency, the operators that take the most time with their input
shapes, and the share of the time in each convolution path (PyTorch sends a one-face convolution
on one thread either to oneDNN, ``aten::mkldnn_convolution``, or to im2col + GEMM,
``aten::_slow_conv2d_forward``). Also says whether this torch build has XNNPACK, which
``torch.utils.mobile_optimizer.optimize_for_mobile`` needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rescnn_appliance.training.export import latency_ms
from rescnn_appliance.vision.affect import load_verified


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, XNNPACK built in: {torch._C._is_xnnpack_enabled()}")
    for name in ("ecnn", "va"):
        module, card = load_verified(args.models, name, "fp32")
        size = card["input"]["size"]
        x = torch.zeros(1, 1, size, size)
        ms = latency_ms(module, size)  # as the model card measures it
        with torch.inference_mode(), torch.profiler.profile(record_shapes=True) as prof:
            for _ in range(args.runs):
                module(x)
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        paths = {p: sum(e.self_cpu_time_total for e in events if e.key == p) / total
                 for p in ("aten::_slow_conv2d_forward", "aten::mkldnn_convolution")}
        print(f"\n{name}: {ms:.2f} ms per face, {card['macs'] / ms / 1e6:.1f} GMAC/s; share of profiled time: "
              + ", ".join(f"{p} {share:.0%}" for p, share in paths.items()))
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
            print(f"  {e.self_cpu_time_total / args.runs:7.1f} us  x{e.count // args.runs:<3} {e.key:30s} {e.input_shapes[:2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
