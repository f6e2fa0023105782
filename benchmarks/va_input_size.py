"""Choose the VA model's input size by measured accuracy against latency.

For each size, a short training run of MobileNetV3-Small (same recipe, same seed, fewer epochs)
gives the val CCC on AffectNet, and the exported fp32 TorchScript gives the one-thread latency.
Writes benchmarks/va_input_size.json and prints a Markdown table.

    .venv/bin/python benchmarks/va_input_size.py --sizes 48 64 96 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from rescnn_appliance.commands.models import default_data_dir
from rescnn_appliance.training.export import latency_ms, script_fp32
from rescnn_appliance.training.nets import build_va_mobilenet, count_macs
from rescnn_appliance.training.recipes import train_va
from rescnn_appliance.training.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("va_input_size.json"))
    args = ap.parse_args()
    base = default_data_dir()
    fer, aff = base / "fer2013" / "fer2013_trainval.npz", base / "affectnet_va" / "affectnet_va_dev.npz"
    rows = []
    for size in args.sizes:
        cfg = TrainConfig(task="va", epochs=args.epochs, lr=0.04, batch_size=64, input_size=size,
                          threads=args.threads, affectnet_repeat=3, fer_per_epoch=3000)
        with tempfile.TemporaryDirectory() as tmp:
            best = train_va(fer, aff, Path(tmp), cfg)["best"]
        model = build_va_mobilenet().eval()
        rows.append({"size": size, "ccc_valence": best["ccc_valence"], "ccc_arousal": best["ccc_arousal"],
                     "latency_ms_fp32_1thread": latency_ms(script_fp32(model, size), size),
                     "macs": count_macs(model, (1, size, size))})
        args.out.write_text(json.dumps({"epochs": args.epochs, "torch": torch.__version__, "rows": rows}, indent=1))
    print("| input | CCC valence | CCC arousal | MACs | fp32 latency, 1 thread |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['ccc_valence']:.3f} | {r['ccc_arousal']:.3f} | {r['macs'] / 1e6:.1f} M | "
              f"{r['latency_ms_fp32_1thread']:.2f} ms |")


if __name__ == "__main__":
    main()
