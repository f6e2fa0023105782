"""FP32 against mixed precision (the paper's FP32/FP16 comparison), side by side.

Trains the ECNN twice from the same seed on the same FER2013 subset, once in fp32 and once under
autocast (float16 on CUDA, bfloat16 on CPU), and records throughput, final loss and val accuracy.
Writes benchmarks/precision_compare.json and prints a Markdown table.

    .venv/bin/python benchmarks/precision_compare.py --limit 4000 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from rescnn_appliance.commands.models import default_data_dir
from rescnn_appliance.training.recipes import train_ecnn
from rescnn_appliance.training.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("precision_compare.json"))
    args = ap.parse_args()
    data = default_data_dir() / "fer2013" / "fer2013_trainval.npz"
    rows = []
    for precision in ("fp32", "mixed"):
        cfg = TrainConfig(task="ecnn", epochs=args.epochs, limit=args.limit, precision=precision,
                          threads=args.threads, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            hist = train_ecnn(data, Path(tmp), cfg)
        last = hist["epochs"][-1]
        rows.append({"precision": precision,
                     "autocast": "none" if precision == "fp32" else str(torch.bfloat16),
                     "images_per_s": sum(e["images_per_s"] for e in hist["epochs"]) / len(hist["epochs"]),
                     "final_train_loss": last["train_loss"], "val_accuracy": last["accuracy"],
                     "val_macro_f1": last["macro_f1"]})
    result = {"limit": args.limit, "epochs": args.epochs, "threads": args.threads,
              "val_rows": args.limit, "torch": torch.__version__, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1))
    print("| precision | autocast | images/s | final train loss | val accuracy | val macro-F1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['autocast']} | {r['images_per_s']:.0f} | {r['final_train_loss']:.3f} | "
              f"{r['val_accuracy']:.3f} | {r['val_macro_f1']:.3f} |")


if __name__ == "__main__":
    main()
