"""int8 calibration: qnnpack's stock activation ranges against mean per-batch ranges, on val.

For each trained checkpoint, quantises the network twice with the export's calibration faces (512
FER2013 training faces, batches of 64): once with qnnpack's stock observers (each activation's range
is the extreme over all calibration faces) and once with the running mean of the per-batch ranges;
the export does the same and keeps the one closer to fp32. Scores fp32 and both int8 variants on val: ECNN accuracy on FER2013 PublicTest,
VA CCC on the AffectNet val rows. Writes benchmarks/int8_calibration.json, prints a Markdown table.

    .venv/bin/python benchmarks/int8_calibration.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rescnn_appliance.training.datasets import load_faces
from rescnn_appliance.training.export import quantize_int8, script_fp32
from rescnn_appliance.training.ship import calibration_faces, load_best
from rescnn_appliance.training.train import evaluate_task

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints")
    ap.add_argument("--fer", type=Path, default=DATA / "fer2013" / "fer2013_trainval.npz")
    ap.add_argument("--affectnet", type=Path, default=DATA / "affectnet_va" / "affectnet_va_dev.npz")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("int8_calibration.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    fer_train = load_faces(args.fer, "train")
    calib = calibration_faces(fer_train)
    fer_val, aff_val = load_faces(args.fer, "val"), load_faces(args.affectnet, "val")
    va_size = int(json.loads((args.checkpoints / "va" / "history.json").read_text())["config"]["input_size"])
    val = {"ecnn": (fer_val.x, fer_val.y, 48),
           "va": (aff_val.x, np.stack([aff_val.valence, aff_val.arousal], 1), va_size)}

    def scores(name: str, module: torch.jit.ScriptModule) -> dict[str, float]:
        x, targets, size = val[name]
        return evaluate_task(name, module, x, targets, size, torch.device("cpu"))

    rows = []
    for name, size in (("ecnn", 48), ("va", va_size)):
        model, _ = load_best(args.checkpoints / name)
        for variant, module in (("fp32", script_fp32(model, size)),
                                ("int8, stock ranges", quantize_int8(model, calib, size, per_batch_ranges=False)),
                                ("int8, mean per-batch ranges", quantize_int8(model, calib, size))):
            rows.append({"model": name, "variant": variant, **scores(name, module)})
            print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| model | variant | val |\n|---|---|---|")
    for r in rows:
        figures = ", ".join(f"{k} {v:.4f}" for k, v in r.items() if k not in ("model", "variant"))
        print(f"| {r['model']} | {r['variant']} | {figures} |")


if __name__ == "__main__":
    main()
