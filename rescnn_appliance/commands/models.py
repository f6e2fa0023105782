"""``rescnn-appliance models``: train, evaluate, export and check the two face models.

Example::

    $ rescnn-appliance models train-ecnn --epochs 30 --time-budget 95 --resume
    $ rescnn-appliance models evaluate --npz ../shared/data/fer2013/fer2013_trainval.npz --perturb all --json
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rescnn_appliance.config import ConfigError, Settings

REPO = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    env = os.environ.get("RESCNN_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _train_args(p: argparse.ArgumentParser, epochs: int, lr: float, batch: int, balance: float) -> None:
    p.add_argument("--out", type=Path, default=None, help="checkpoint folder (default: checkpoints/<task>)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--batch-size", type=int, default=batch)
    p.add_argument("--precision", choices=("fp32", "mixed"), default="fp32",
                   help="mixed: autocast float16 on CUDA, bfloat16 on CPU")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="MIN",
                   help="stop at an epoch boundary before this many minutes; continue with --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/last.pt with the same settings (--epochs may grow; --time-budget, --threads, --workers may change)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the step (default: torch's)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="threads augmenting the next batches meanwhile (default: half the cores, 1 to 8); "
                        "the batches are the same for any N")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training faces")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--balance-floor", type=float, default=balance, metavar="F",
                   help=f"upsample each minority expression to F x the largest class (1: fully balanced; default {balance})")
    p.add_argument("--noise-p", type=float, default=0.5, metavar="P",
                   help="share of training faces given sensor noise and an illumination gain (default 0.5)")
    p.add_argument("--sigma-range", type=_sigma_range, default=(0.0, 55.0), metavar="LO,HI",
                   help="Gaussian noise sigma in grey levels, drawn uniformly (default 0,55)")
    p.add_argument("--init-from", type=Path, default=None, metavar="BEST_PT",
                   help="start from these weights (e.g. an earlier run's best.pt) with a fresh schedule")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="train, evaluate and export the face models")
    msub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True

    p = msub.add_parser("train-ecnn", help="train the 7-class emotion CNN")
    p.add_argument("--data", type=Path, default=None,
                   help="FER-layout npz, fer2013.csv or image folder (default: shared fer2013_trainval.npz)")
    p.add_argument("--blocks", type=_block_counts, default=(0, 1, 2, 1), metavar="A,B,C,D",
                   help="residual blocks per stage (default 0,1,2,1, the shipped ECNN's; runs before it "
                        "used 0,1,1,1); warm-starting a deeper net from a shallower one's weights keeps "
                        "its function, the new blocks start as identities")
    p.add_argument("--teacher", type=Path, default=None, metavar="BEST_PT",
                   help="a trained ECNN's weights (same --blocks): it sees each face before the sensor noise "
                        "and the net learns to give its answer on the noisy face too")
    p.add_argument("--distill-weight", type=float, default=0.5, metavar="W",
                   help="with --teacher: share of the loss that follows the teacher (default 0.5)")
    p.add_argument("--distill-temp", type=float, default=2.0, metavar="T",
                   help="with --teacher: softmax temperature of the teacher's answer (default 2)")
    p.add_argument("--val-conditions", type=_conditions, default=(), metavar="NAME,..",
                   help="also score val under these test conditions each epoch (gaussian, impulse, "
                        "illumination); the best epoch is then the one with the best mean accuracy")
    _train_args(p, epochs=30, lr=0.05, batch=128, balance=0.35)
    p.set_defaults(func=_train_ecnn)

    p = msub.add_parser("train-va", help="train the MobileNetV3-Small valence/arousal regressor")
    p.add_argument("--fer", type=Path, default=None, help="FER-layout npz with FER+ votes")
    p.add_argument("--affectnet", type=Path, default=None, help="AffectNet-layout npz")
    p.add_argument("--input-size", type=int, default=64, choices=range(48, 113), metavar="48..112")
    p.add_argument("--affectnet-repeat", type=int, default=6, help="AffectNet faces shown N times per epoch")
    p.add_argument("--fer-per-epoch", type=int, default=16000, help="FER faces drawn per epoch")
    p.add_argument("--va-classes", type=int, default=8, choices=(0, 8),
                   help="8: the head also learns the AffectNet expressions and VA follows them; 0: plain regressor")
    p.add_argument("--class-loss-weight", type=float, default=1.0, help="weight of the expression loss")
    _train_args(p, epochs=20, lr=0.03, batch=64, balance=0.7)
    p.set_defaults(func=_train_va)

    from rescnn_appliance.commands import _models_eval

    _models_eval.add_actions(msub)


def _block_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--blocks {text!r}: give four counts like 0,1,1,1") from None
    if len(counts) != 4 or min(counts) < 0 or max(counts) > 4:
        raise argparse.ArgumentTypeError(f"--blocks {text!r}: give four counts from 0 to 4, like 0,1,1,1")
    return counts


def _conditions(text: str) -> tuple[str, ...]:
    from rescnn_appliance.vision.perturb import CONDITIONS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in CONDITIONS or n == "clean"]
    if unknown:
        raise argparse.ArgumentTypeError(f"--val-conditions {text!r}: unknown {', '.join(unknown)}; "
                                         "choose from gaussian, impulse, illumination")
    return names


def _sigma_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigma-range {text!r}: give two grey levels like 0,55") from None
    if not 0 <= lo <= hi <= 255:
        raise argparse.ArgumentTypeError(f"--sigma-range {text!r}: need 0 <= LO <= HI <= 255")
    return lo, hi


def _config(args: argparse.Namespace, task: str, input_size: int = 48):
    from rescnn_appliance.training.augment import AugmentSettings
    from rescnn_appliance.training.train import TrainConfig

    extra = {k: getattr(args, k) for k in ("affectnet_repeat", "fer_per_epoch", "va_classes", "class_loss_weight")
             if hasattr(args, k)}
    if hasattr(args, "blocks"):
        extra["ecnn_blocks"] = args.blocks
        extra.update(distill_weight=args.distill_weight, distill_temp=args.distill_temp,
                     val_conditions=args.val_conditions)
        if args.teacher is not None:
            extra["teacher"] = str(_existing(args.teacher, "teacher weights"))
    if args.init_from is not None:
        extra["init_from"] = str(_existing(args.init_from, "starting weights"))
    return TrainConfig(task=task, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       precision=args.precision, time_budget_min=args.time_budget, threads=args.threads,
                       limit=args.limit, seed=args.seed, input_size=input_size, workers=args.workers,
                       balance_floor=args.balance_floor,
                       augment=AugmentSettings(noise_p=args.noise_p, sigma_min=args.sigma_range[0],
                                               sigma_max=args.sigma_range[1]), **extra)


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found (pass its path, or set RESCNN_DATA)")
    return path


def _train_ecnn(args: argparse.Namespace, settings: Settings) -> int:
    from rescnn_appliance.training.recipes import train_ecnn

    data = _existing(args.data or default_data_dir() / "fer2013" / "fer2013_trainval.npz", "FER data")
    history = train_ecnn(data, args.out or REPO / "checkpoints" / "ecnn", _config(args, "ecnn"), args.resume)
    best = history["best"] or {}
    print(f"ECNN best val accuracy {best.get('accuracy', float('nan')):.4f} at epoch {best.get('epoch')}")
    return 0


def _train_va(args: argparse.Namespace, settings: Settings) -> int:
    from rescnn_appliance.training.recipes import train_va

    base = default_data_dir()
    fer = _existing(args.fer or base / "fer2013" / "fer2013_trainval.npz", "FER data")
    aff = _existing(args.affectnet or base / "affectnet_va" / "affectnet_va_dev.npz", "AffectNet data")
    history = train_va(fer, aff, args.out or REPO / "checkpoints" / "va", _config(args, "va", args.input_size),
                       args.resume)
    best = history["best"] or {}
    print(f"VA best val CCC valence {best.get('ccc_valence', float('nan')):.3f} "
          f"arousal {best.get('ccc_arousal', float('nan')):.3f} at epoch {best.get('epoch')}")
    return 0
