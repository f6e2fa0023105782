"""Evaluation and export actions of ``rescnn-appliance models`` (registered by models.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rescnn_appliance.config import ConfigError, Settings

CONDITION_CHOICES = ("clean", "gaussian", "impulse", "illumination", "all")


def add_actions(msub: argparse._SubParsersAction) -> None:
    p = msub.add_parser("evaluate", help="accuracy / CCC of the shipped models on an npz, csv or folder")
    p.add_argument("--npz", type=Path, required=True, help="FER- or AffectNet-layout npz (or fer2013.csv, folder)")
    p.add_argument("--split", default=None, help="FER: train|val; AffectNet: train|val|all (default val)")
    p.add_argument("--perturb", choices=CONDITION_CHOICES, default="clean",
                   help="the paper's test conditions; all = clean and the three")
    p.add_argument("--precision", choices=("fp32", "int8"), default=None, help="default: models.precision")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_evaluate)

    p = msub.add_parser("export", help="checkpoints -> TorchScript fp32 + int8, cards and plots in models/")
    p.add_argument("--checkpoints", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(func=_export)

    p = msub.add_parser("check", help="verify the shipped models against their cards and run one face")
    p.set_defaults(func=_check)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from rescnn_appliance.training.datasets import DatasetError, load_faces
    from rescnn_appliance.training.evaluate import evaluate_faces, expand_conditions, format_report
    from rescnn_appliance.vision.affect import AffectModel, ModelError

    try:
        faces = load_faces(args.npz, args.split or "val")
        model = AffectModel.load(settings.models_dir, args.precision or settings.models.precision,
                                 settings.models.threads)
    except (DatasetError, ModelError) as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return 1
    report = evaluate_faces(model, faces, expand_conditions(args.perturb))
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from rescnn_appliance.commands.models import REPO, default_data_dir
    from rescnn_appliance.training.ship import ship

    base = default_data_dir()
    fer = base / "fer2013" / "fer2013_trainval.npz"
    aff = base / "affectnet_va" / "affectnet_va_dev.npz"
    for path in (fer, aff):
        if not path.exists():
            raise ConfigError(f"{path}: data for calibration and evaluation not found (set RESCNN_DATA)")
    ship(args.checkpoints or REPO / "checkpoints", args.out or REPO / "models", fer, aff)
    print(f"exported to {args.out or REPO / 'models'}")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    import numpy as np

    from rescnn_appliance.vision.affect import AffectModel, ModelError

    for precision in ("fp32", "int8"):
        try:
            model = AffectModel.load(settings.models_dir, precision, 1)
        except ModelError as exc:
            print(f"rescnn-appliance: {exc}", file=sys.stderr)
            return 1
        r = model.read(np.full((48, 48), 128, np.uint8), t=0.0)
        print(f"{precision}: ok ({r.emotion}, valence {r.valence:+.2f}, arousal {r.arousal:+.2f})")
    return 0
