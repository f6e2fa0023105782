"""Where the VA regressor's error comes from: expression recognition, not the per-class geometry.

Reproduces the diagnostic figures quoted in models/va.md and the README:

- the CCC that AffectNet's per-class mean (valence, arousal), estimated on the subset's train
  rows, reaches on its val rows when the expression is known (the ceiling of a net that gets the
  expression right and nothing else);
- the shipped VA net's CCC, its 8-class expression accuracy on the same rows, and its CCC when
  its own head is handed the true expression (its learnt coordinates and per-face correction kept);
- the shipped ECNN's accuracy on the AffectNet val rows (7 FER classes; the crops are tighter than
  FER2013's) against its FER2013 val accuracy;
- how often FER+'s majority vote agrees with the FER2013 label on val (the label noise ceiling).

    .venv/bin/python benchmarks/va_ceiling.py [--data ../shared/data] [--json benchmarks/va_ceiling.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rescnn_appliance.training.datasets import (
    FER_TO_AFFECTNET,
    FERPLUS_TO_AFFECTNET,
    circumplex_coordinates,
    load_affectnet,
    load_faces,
)
from rescnn_appliance.training.metrics import ccc
from rescnn_appliance.training.ship import load_best
from rescnn_appliance.vision.preprocess import prepare_faces

REPO = Path(__file__).resolve().parent.parent


def pair(true_v: np.ndarray, true_a: np.ndarray, va: np.ndarray) -> dict[str, float]:
    return {"valence": round(ccc(true_v, va[:, 0]), 3), "arousal": round(ccc(true_a, va[:, 1]), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    affectnet = args.data / "affectnet_va" / "affectnet_va_dev.npz"
    fer = args.data / "fer2013" / "fer2013_trainval.npz"

    train = load_affectnet(affectnet, "train")
    coords = circumplex_coordinates(train)
    report: dict[str, object] = {"affectnet_val_rows": 0}

    va_model, history = load_best(args.checkpoints / "va")
    size = int(history["config"]["input_size"])
    val = load_affectnet(affectnet, "val")  # the 48x48 crops the appliance feeds it
    exp = val.extra["exp_affectnet"]
    report["affectnet_val_rows"] = len(val)
    report["class_mean_oracle"] = pair(val.valence, val.arousal, coords[exp])

    with torch.inference_mode():
        x = torch.from_numpy(prepare_faces(val.x, size))
        residual, logits = va_model.head_scores(x)
        predicted = va_model.va_from(residual, torch.softmax(logits, 1)).numpy()
        told = va_model.va_from(residual, F.one_hot(torch.from_numpy(exp), logits.shape[1]).float()).numpy()
    report["va_net"] = pair(val.valence, val.arousal, predicted)
    report["va_net_expression_accuracy_8"] = round(float((logits.argmax(1).numpy() == exp).mean()), 3)
    report["va_net_told_the_expression"] = pair(val.valence, val.arousal, told)

    ecnn, _ = load_best(args.checkpoints / "ecnn")
    with torch.inference_mode():
        known = val.y >= 0
        pred = ecnn(torch.from_numpy(prepare_faces(val.x[known]))).argmax(1).numpy()
        fer_val = load_faces(fer, "val")
        fer_pred = ecnn(torch.from_numpy(prepare_faces(fer_val.x))).argmax(1).numpy()
    report["ecnn_accuracy_affectnet_val_7"] = round(float((pred == val.y[known]).mean()), 3)
    report["ecnn_accuracy_fer_val"] = round(float((fer_pred == fer_val.y).mean()), 4)

    votes = fer_val.ferplus[:, :8]
    matched = (fer_val.ferplus[:, 0] >= 0) & (votes.sum(1) > 0)
    majority_affectnet = np.array(FERPLUS_TO_AFFECTNET)[votes[matched].argmax(1)]
    agree = majority_affectnet == FER_TO_AFFECTNET[fer_val.y[matched]]
    report["ferplus_majority_agrees_with_fer2013_val"] = round(float(agree.mean()), 3)

    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
