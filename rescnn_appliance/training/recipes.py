"""The two training recipes: which data, which targets, which sampling, for ECNN and for VA.

Example::

    >>> cfg = TrainConfig(task="ecnn", epochs=1, limit=256)                  # doctest: +SKIP
    >>> train_ecnn(Path("../shared/data/fer2013/fer2013_trainval.npz"), Path("ck/ecnn"), cfg)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rescnn_appliance.training.datasets import (
    AFFECTNET_CLASSES,
    balanced_indices,
    circumplex_coordinates,
    expression_distribution,
    fer_va_targets,
    load_affectnet,
    load_faces,
    training_rows,
)
from rescnn_appliance.training.nets import build_ecnn, build_va_mobilenet
from rescnn_appliance.training.train import TrainConfig, TrainData, train


def ecnn_data(path: Path, cfg: TrainConfig) -> TrainData:
    train_set = load_faces(path, "train")
    train_set = train_set.subset(training_rows(train_set))
    if cfg.limit:
        train_set = train_set.subset(np.arange(min(cfg.limit, len(train_set))))
    val = load_faces(path, "val")
    if cfg.limit:
        val = val.subset(np.arange(min(cfg.limit, len(val))))
    return TrainData(train_set.x, train_set.y, train_set.y, val.x, val.y)


def train_ecnn(path: Path, out_dir: Path, cfg: TrainConfig, resume: bool = False) -> dict:
    """Train the ECNN on a FER-layout npz, fer2013.csv or image folder."""
    data = ecnn_data(path, cfg)

    def order(rng: np.random.Generator) -> np.ndarray:
        idx = balanced_indices(data.targets, cfg.balance_floor, rng)
        rng.shuffle(idx)
        return idx

    torch.manual_seed(cfg.seed)  # the initial weights follow the run's seed too
    return train(build_ecnn(cfg.ecnn_blocks), data, cfg, out_dir, resume, order)


def va_data(fer_path: Path, affectnet_path: Path, cfg: TrainConfig) -> tuple[TrainData, int, np.ndarray, np.ndarray]:
    """Faces and targets for the VA net: columns valence, arousal, then (with ``cfg.va_classes``)
    the distribution over the 8 AffectNet expressions: one-hot for AffectNet rows, the FER+
    votes for FER rows (their FER2013 label where the votes are missing). Also returns the
    number of AffectNet rows (they come first), the class coordinates and the FER rows' labels."""
    aff_train = load_affectnet(affectnet_path, "train")
    aff_val = load_affectnet(affectnet_path, "val")
    coords = circumplex_coordinates(aff_train)  # estimated from AffectNet training rows only
    fer = load_faces(fer_path, "train")
    fer = fer.subset(training_rows(fer))
    if cfg.limit:
        fer = fer.subset(np.arange(min(cfg.limit, len(fer))))
        aff_train = aff_train.subset(np.arange(min(cfg.limit, len(aff_train))))
    fv, fa = fer_va_targets(fer, coords)
    x = np.concatenate([aff_train.x, fer.x])
    targets = np.concatenate([
        np.stack([aff_train.valence, aff_train.arousal], 1),
        np.stack([fv, fa], 1),
    ]).astype(np.float32)
    if cfg.va_classes:
        targets = np.concatenate([targets, np.concatenate([
            np.eye(len(AFFECTNET_CLASSES), dtype=np.float32)[aff_train.extra["exp_affectnet"]],
            expression_distribution(fer)])], 1)
    val_t = np.stack([aff_val.valence, aff_val.arousal], 1).astype(np.float32)
    return TrainData(x, targets, None, aff_val.x, val_t), len(aff_train), coords, fer.y


def train_va(fer_path: Path, affectnet_path: Path, out_dir: Path, cfg: TrainConfig, resume: bool = False) -> dict:
    """Train the VA regressor on AffectNet (train split) plus FER2013 with FER+-derived targets.

    AffectNet is the target domain, so each epoch shows every AffectNet training face
    ``cfg.affectnet_repeat`` times, plus a fresh draw of ``cfg.fer_per_epoch`` FER faces.
    """
    data, n_aff, coords, fer_labels = va_data(fer_path, affectnet_path, cfg)
    n_fer = len(data.x) - n_aff
    per_epoch = min(n_fer, cfg.fer_per_epoch)

    def order(rng: np.random.Generator) -> np.ndarray:
        # FER faces drawn from a pool where each minority expression is upsampled to
        # balance_floor x the largest: AffectNet's val rows are balanced over the expressions,
        # and FER's many neutral and happy faces otherwise pull every reading toward them
        pool = balanced_indices(fer_labels, cfg.balance_floor, rng)
        idx = np.concatenate([np.tile(np.arange(n_aff), cfg.affectnet_repeat),
                              n_aff + rng.choice(pool, min(per_epoch, len(pool)), replace=False)])
        rng.shuffle(idx)
        return idx

    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "circumplex_coords.npy", coords)
    torch.manual_seed(cfg.seed)  # the initial weights follow the run's seed too
    model = build_va_mobilenet(classes=cfg.va_classes)
    if cfg.va_classes:
        model.set_class_coordinates(torch.from_numpy(coords))
    return train(model, data, cfg, out_dir, resume, order)
