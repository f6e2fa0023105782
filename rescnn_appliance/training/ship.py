"""From the best checkpoints to ``models/``: TorchScript fp32 + int8, measured cards and plots.

Example::

    $ rescnn-appliance models export   # checkpoints/ -> models/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rescnn_appliance.training.datasets import FER_CLASSES, load_faces, training_rows
from rescnn_appliance.training.evaluate import evaluate_faces
from rescnn_appliance.training.export import (
    describe,
    latency_ms,
    quantize_int8,
    save_module,
    script_fp32,
    write_card,
)
from rescnn_appliance.training.nets import build_ecnn, build_va_mobilenet
from rescnn_appliance.training.plots import plot_confusion, plot_curves
from rescnn_appliance.training.train import evaluate_task, score_of
from rescnn_appliance.vision.affect import AffectModel
from rescnn_appliance.vision.perturb import CONDITIONS

PREPROCESSING = ("grey uint8 48x48 crop -> 3x3 median -> 3x3 Gaussian (sigma 0.6) -> resize to the input "
                 "size (bilinear, exact) -> per-image standardisation (mean 0, std 1, std floor 4 grey levels); "
                 "code: rescnn_appliance.vision.preprocess.prepare_faces")
FER_DATA = ("FER2013 (Goodfellow et al., ICML 2013 challenge) Training split, 28,709 faces less FER+'s 161 "
            "excluded and the ambiguous duplicates; selected on PublicTest ('val', 3,589). FER+ votes "
            "(Microsoft, MIT) for the VA targets. Research use only.")
AFFECTNET_DATA = ("AffectNet (Mollahosseini et al. 2017) valence/arousal subset of 2,999 manually annotated "
                  "validation faces, split 80/20 stratified by class (seed 7): 'train' for training and for "
                  "the per-class circumplex coordinates, 'val' for selection. Research use only.")


VA_ARCHITECTURE = {
    False: "MobileNetV3-Small, 1-channel input, tanh 2-value head (rescnn_appliance.training.nets)",
    True: ("MobileNetV3-Small, 1-channel input; the head scores the 8 AffectNet expressions and outputs "
           "tanh(learnt per-class (valence, arousal) coordinates weighted by the expression probabilities "
           "+ a per-face correction) (rescnn_appliance.training.nets.MobileNetV3VA, classes=8)"),
}
VA_TARGETS = ("AffectNet rows: their own annotations. FER2013 rows: FER+ vote-weighted mean of per-class "
              "(valence, arousal) centroids estimated from the AffectNet training rows; rows without "
              "votes use their FER2013 label's centroid. Loss 1 - CCC (mean of V and A) + 0.5 MSE.")
VA_CLASS_TARGETS = (" Expression targets for the class head: AffectNet rows their own label (one-hot), FER2013 "
                    "rows their FER+ vote distribution (else their FER2013 label); cross-entropy added to the loss "
                    "with the recipe's class_loss_weight. The per-class coordinates start at the centroids above "
                    "and are learnt.")


RECIPE_KEYS = {  # what each model card's recipe line shows (the JSON card has all of it)
    "ecnn": ("epochs", "batch_size", "lr", "precision", "input_size", "ecnn_blocks", "balance_floor",
             "val_conditions"),
    "va": ("epochs", "batch_size", "lr", "precision", "input_size", "va_classes", "class_loss_weight",
           "balance_floor", "affectnet_repeat", "fer_per_epoch"),
}


def best_summary(best: dict[str, Any]) -> str:
    """A run's best epoch in words: accuracy for the ECNN, CCC for the VA net."""
    if "accuracy" in best:
        return f"best val accuracy {best['accuracy']:.4f}"
    return f"best val CCC valence {best['ccc_valence']:.3f} / arousal {best['ccc_arousal']:.3f}"


def _epochs_text(run: dict[str, Any]) -> str:
    """'22 epochs', or '13 of 30 epochs' for a run stopped before its schedule ended."""
    planned, ran = run["recipe"]["epochs"], run.get("epochs_run", run["recipe"]["epochs"])
    return f"{ran} epochs" if ran == planned else f"{ran} of {planned} epochs"


def load_best(ck_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a checkpoint folder, built as its recipe says, with its best weights (eval
    mode), and the run's history."""
    history = json.loads((ck_dir / "history.json").read_text())
    config = history["config"]
    if config["task"] == "ecnn":
        model: torch.nn.Module = build_ecnn(config.get("ecnn_blocks"))
    else:
        model = build_va_mobilenet(classes=int(config.get("va_classes", 0)))
    model.load_state_dict(torch.load(ck_dir / "best.pt", map_location="cpu"))
    return model.eval(), history


def calibration_faces(fer_train: Any, n: int = 512) -> np.ndarray:
    """The int8 calibration set: ``n`` FER2013 training faces spread evenly over the rows used
    for training."""
    return fer_train.x[training_rows(fer_train)][:: max(1, len(fer_train) // n)][:n]


def with_warm_starts(history: dict[str, Any], base: Path) -> dict[str, Any]:
    """The run's history with the runs it was warm-started from (``init_from``) put in front:
    their epochs first and renumbered so the curves show the whole training, and their recipes
    and best epochs under ``warm_starts`` for the card."""
    chain: list[dict[str, Any]] = []
    init = history["config"].get("init_from")
    seen: set[Path] = set()
    while init:
        prev_path = ((base / init).parent / "history.json").resolve()
        if prev_path in seen:
            raise ValueError(f"{prev_path}: warm starts go round in a circle (check init_from)")
        seen.add(prev_path)
        if not prev_path.exists():
            raise FileNotFoundError(f"{prev_path}: history of the run this one started from is missing")
        prev = json.loads(prev_path.read_text())
        chain.insert(0, {"from": init, "recipe": prev["config"], "best_epoch": prev["best"],
                         "epochs_run": len(prev["epochs"])})
        history = {**history, "epochs": prev["epochs"] + [
            {**e, "epoch": e["epoch"] + len(prev["epochs"])} for e in history["epochs"]]}
        init = prev["config"].get("init_from")
    return {**history, "warm_starts": chain}


def export_pair(model: torch.nn.Module, name: str, size: int, calib: np.ndarray, out: Path,
                val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """fp32 and int8 TorchScript files. int8 is calibrated both ways (mean per-batch ranges and
    qnnpack's stock extremes) and the one that keeps more of the fp32 score on ``val`` is saved:
    which is better depends on the network (benchmarks/int8_calibration.py)."""
    fp32 = script_fp32(model, size)
    candidates = {"mean per-batch ranges": quantize_int8(model, calib, size),
                  "stock ranges": quantize_int8(model, calib, size, per_batch_ranges=False)}
    scores = {k: score_of(name, evaluate_task(name, m, *val, size, torch.device("cpu"))) for k, m in candidates.items()}
    chosen = max(scores, key=scores.get)
    int8 = candidates[chosen]
    variants = {"fp32": save_module(fp32, out / f"{name}_fp32.pt"),
                "int8": save_module(int8, out / f"{name}_int8.pt")}
    variants["int8"]["calibration"] = {"ranges": chosen, "val_score": {k: round(v, 4) for k, v in scores.items()}}
    variants["fp32"]["latency_ms_1thread"] = latency_ms(fp32, size)
    variants["int8"]["latency_ms_1thread"] = latency_ms(int8, size)
    return variants


def _calibration_lines(variant: dict[str, Any]) -> list[str]:
    cal = variant.get("calibration")
    if not cal:
        return []
    tried = ", ".join(f"{k} {v}" for k, v in cal["val_score"].items())
    return [f"int8 activation ranges: {cal['ranges']}, the one closer to fp32 on val ({tried}).", ""]


def _distillation_text(recipe: dict[str, Any]) -> str:
    """The recipe line's note on a teacher, empty for a run without one."""
    if not recipe.get("teacher"):
        return ""
    return (f"; the loss also follows the teacher's ({recipe['teacher']}) softened answer on each face before "
            f"its noise (weight {recipe['distill_weight']}, temperature {recipe['distill_temp']})")


def _md_table(report: dict[str, Any], key: str) -> str:
    rows = []
    for cond, r in report["conditions"].items():
        if key == "emotion":
            rows.append(f"| {cond} | {r['emotion']['accuracy']:.4f} | {r['emotion']['macro_f1']:.4f} |")
        else:
            rows.append(f"| {cond} | {r['valence']['ccc']:.3f} | {r['arousal']['ccc']:.3f} | "
                        f"{r['valence']['rmse']:.3f} | {r['arousal']['rmse']:.3f} |")
    return "\n".join(rows)


def ship(ck_root: Path, out: Path, fer_path: Path, affectnet_path: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    fer_train = load_faces(fer_path, "train")
    calib = calibration_faces(fer_train)
    fer_val = load_faces(fer_path, "val")
    aff_val = load_faces(affectnet_path, "val")

    ecnn, ecnn_hist = load_best(ck_root / "ecnn")
    ecnn_hist = with_warm_starts(ecnn_hist, ck_root.parent)
    va_hist_path = ck_root / "va"
    va, va_hist = load_best(va_hist_path)
    va_hist = with_warm_starts(va_hist, ck_root.parent)
    va_size, va_classes = int(va_hist["config"]["input_size"]), int(va_hist["config"].get("va_classes", 0))

    ecnn_card: dict[str, Any] = {
        "name": "ecnn", "task": "7-class facial emotion (FER2013 order)", "classes": list(FER_CLASSES),
        "architecture": "residual CNN with squeeze-excitation (rescnn_appliance.training.nets.ECNN)",
        **describe(ecnn, 48), "input": {"size": 48, "channels": 1, "dtype": "uint8 crop", "preprocessing": PREPROCESSING},
        "output": "logits (N,7); softmax gives probabilities", "training_data": FER_DATA,
        "recipe": ecnn_hist["config"], "best_epoch": ecnn_hist["best"], "warm_starts": ecnn_hist["warm_starts"],
        "variants": export_pair(ecnn, "ecnn", 48, calib, out, (fer_val.x, fer_val.y)),
    }
    va_card: dict[str, Any] = {
        "name": "va", "task": "valence and arousal in [-1, 1]",
        "architecture": VA_ARCHITECTURE[bool(va_classes)],
        **describe(va, va_size), "input": {"size": va_size, "channels": 1, "dtype": "uint8 48x48 crop, resized",
                                           "preprocessing": PREPROCESSING},
        "output": "(N,2) valence, arousal", "training_data": AFFECTNET_DATA + " " + FER_DATA,
        "va_targets": VA_TARGETS + (VA_CLASS_TARGETS if va_classes else ""),
        "circumplex_coordinates": np.load(va_hist_path / "circumplex_coords.npy").round(4).tolist(),
        "recipe": va_hist["config"], "best_epoch": va_hist["best"], "warm_starts": va_hist["warm_starts"],
        "variants": export_pair(va, "va", va_size, calib, out,
                                 (aff_val.x, np.stack([aff_val.valence, aff_val.arousal], 1))),
    }
    for name, card in (("ecnn", ecnn_card), ("va", va_card)):
        (out / f"{name}.json").write_text(json.dumps(card, indent=2))  # provisional: hashes for loading

    reports: dict[str, Any] = {}
    for precision in ("fp32", "int8"):
        model = AffectModel.load(out, precision, threads=1)
        reports[precision] = {"fer_val": evaluate_faces(model, fer_val, list(CONDITIONS)),
                              "affectnet_val": evaluate_faces(model, aff_val, ["clean"] + [c for c in CONDITIONS if c != "clean"])}
    ecnn_card["metrics_val"] = {p: {c: r["emotion"] for c, r in reports[p]["fer_val"]["conditions"].items()}
                                for p in reports}
    va_card["metrics_val"] = {p: {c: {"valence": r["valence"], "arousal": r["arousal"]}
                                  for c, r in reports[p]["affectnet_val"]["conditions"].items()} for p in reports}

    plot_curves(ecnn_hist, ["accuracy", "macro_f1", "gaussian_accuracy"], out / "ecnn_training.png", "ECNN")
    plot_curves(va_hist, ["ccc_valence", "ccc_arousal"], out / "va_training.png", "VA")
    for cond, r in reports["fp32"]["fer_val"]["conditions"].items():
        plot_confusion(r["emotion"]["confusion_matrix"], FER_CLASSES, out / f"ecnn_confusion_{cond}.png",
                       f"ECNN fp32, FER2013 val, {cond}")

    def md(card: dict[str, Any], key: str, report_key: str, header: str) -> str:
        v = card["variants"]
        lines = [f"# Model card: {card['name']}", "", f"Task: {card['task']}.", "",
                 (f"Architecture: {card['architecture']}; {card['parameters']:,} parameters, "
                 f"{card['macs'] / 1e6:.1f} M MACs per face at {card['input']['size']}x{card['input']['size']}."), "",
                 f"Input: {card['input']['preprocessing']}.", "", f"Training data: {card['training_data']}", "",
                 (f"Recipe: {json.dumps({k: card['recipe'][k] for k in RECIPE_KEYS[card['name']] if k in card['recipe']})}; "
                 "SGD Nesterov, one-cycle LR, EMA weights, augmentation (rotation, flip, scale/shift, "
                 f"brightness/contrast, Gaussian and impulse noise, illumination gain){_distillation_text(card['recipe'])}."), ""]
        starts = card.get("warm_starts", [])
        if starts:
            runs = [f"run {i + 1} ({_epochs_text(w)}, lr {w['recipe']['lr']}): "
                    f"{best_summary(w['best_epoch'])} at its epoch {w['best_epoch']['epoch']}"
                    for i, w in enumerate(starts)]
            runs.append(f"run {len(starts) + 1} (the recipe above): {best_summary(card['best_epoch'])} at its "
                        f"epoch {card['best_epoch']['epoch']}")
            lines += [(f"Trained in {len(runs)} runs, each started from the previous run's best weights on a fresh "
                       f"schedule: {'; '.join(runs)}. The curves show all of them."), ""]
        for p in ("fp32", "int8"):
            lines += [f"## {p} (`{v[p]['file']}`, sha256 `{v[p]['sha256']}`)", "",
                      f"Latency, one face, one thread, this machine: {v[p]['latency_ms_1thread']:.2f} ms.", "",
                      *_calibration_lines(v[p]),
                      header, _md_table(reports[p][report_key], key), ""]
        lines += [(f"Exported with torch {torch.__version__}. Figures are on `val`; the sealed holdout is checked "
                  "independently."), ""]
        return "\n".join(lines)

    write_card(out, "ecnn", ecnn_card, md(ecnn_card, "emotion", "fer_val",
                                          "| condition | accuracy | macro-F1 |\n|---|---|---|"))
    write_card(out, "va", va_card, md(va_card, "va", "affectnet_val",
                                      "| condition | CCC valence | CCC arousal | RMSE valence | RMSE arousal |\n|---|---|---|---|---|"))
    return reports
