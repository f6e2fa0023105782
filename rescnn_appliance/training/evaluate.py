"""Evaluate face models on any npz of ../shared/data (FER or AffectNet layout), clean or perturbed.

Works on the shipped TorchScript models (through :class:`AffectModel`, exactly as the appliance
runs them) and reports accuracy, macro-F1, per-class recall and the confusion matrix for
emotions, and CCC, RMSE and Pearson r per dimension for valence/arousal.

Example::

    >>> model = AffectModel.load("models")                                           # doctest: +SKIP
    >>> report = evaluate_npz(model, Path("fer2013_trainval.npz"), "val", ["clean"])  # doctest: +SKIP
    >>> report["conditions"]["clean"]["emotion"]["accuracy"]                          # doctest: +SKIP
    0.68
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rescnn_appliance.training.datasets import FaceSet, load_faces
from rescnn_appliance.training.metrics import classification_report, regression_report
from rescnn_appliance.vision.affect import AffectModel
from rescnn_appliance.vision.perturb import CONDITIONS, perturb


def predict_all(model: AffectModel, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = [model.predict(x[i : i + batch]) for i in range(0, len(x), batch)]
    return tuple(np.concatenate(p) for p in zip(*parts))  # type: ignore[return-value]


def evaluate_faces(model: AffectModel, faces: FaceSet, conditions: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"source": faces.source, "n": len(faces), "precision": model.precision,
                           "conditions": {}}
    for name in conditions:
        x = faces.x if name == "clean" else perturb(faces.x, name)
        t0 = time.perf_counter()
        probs, val, aro = predict_all(model, x)
        seconds = time.perf_counter() - t0
        result: dict[str, Any] = {"seconds": seconds, "ms_per_face": 1000 * seconds / max(len(x), 1)}
        if faces.y is not None:
            keep = faces.y >= 0  # AffectNet's contempt has no FER class
            result["emotion"] = classification_report(faces.y[keep], probs[keep].argmax(1))
        if faces.valence is not None:
            result["valence"] = regression_report(faces.valence, val)
            result["arousal"] = regression_report(faces.arousal, aro)
        out["conditions"][name] = result
    return out


def evaluate_npz(model: AffectModel, path: Path, split: str, conditions: Sequence[str]) -> dict[str, Any]:
    return evaluate_faces(model, load_faces(path, split), conditions)


def expand_conditions(perturb_arg: str) -> list[str]:
    if perturb_arg == "all":
        return list(CONDITIONS)
    return ["clean"] if perturb_arg == "clean" else [perturb_arg]


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['source']}  n={report['n']}  precision={report['precision']}"]
    for name, r in report["conditions"].items():
        parts = [f"{name:>12}:"]
        if "emotion" in r:
            parts.append(f"acc {r['emotion']['accuracy']:.4f}  macro-F1 {r['emotion']['macro_f1']:.4f}")
        if "valence" in r:
            parts.append(f"CCC V {r['valence']['ccc']:.3f} A {r['arousal']['ccc']:.3f}  "
                         f"RMSE V {r['valence']['rmse']:.3f} A {r['arousal']['rmse']:.3f}")
        parts.append(f"{r['ms_per_face']:.2f} ms/face")
        lines.append("  ".join(parts))
    return "\n".join(lines)
