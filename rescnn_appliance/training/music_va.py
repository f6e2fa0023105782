"""Fit the audio -> valence/arousal model on the 4Q audio emotion dataset (music_4q).

Extracts features (all cores), reports a by-artist 5-fold cross-validation (quadrant accuracy,
valence-sign and arousal-sign accuracy), then fits on all clips and writes the coefficients
and their card into ``rescnn_appliance/data/``.

Usage::

    python -m rescnn_appliance.training.music_va --data ../shared/data/music_4q
    python -m rescnn_appliance.training.music_va --data ... --cv-only --json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from rescnn_appliance.music.audio_features import (
    EXCERPT_S,
    FEATURE_NAMES,
    features_from_samples,
    read_excerpt,
)
from rescnn_appliance.music.va_model import DEFAULT_PATH, QUADRANTS, VAModel

C_REGULARISATION = 0.03
N_FOLDS = 5


def _features(path: str) -> tuple[np.ndarray, float, float]:
    t0 = time.process_time()
    mono, rate, _ = read_excerpt(path)
    x = features_from_samples(mono, rate)
    return x, time.process_time() - t0, len(mono) / rate


def load_dataset(root: Path, workers: int | None = None) -> dict[str, np.ndarray]:
    rows = list(csv.DictReader((root / "annotations.csv").open(newline="")))
    paths = [str(root / r["file"]) for r in rows]
    with Pool(workers or os.cpu_count()) as pool:
        out = pool.map(_features, paths, chunksize=8)
    return {
        "X": np.stack([o[0] for o in out]),
        "cpu_s": np.array([o[1] for o in out]),
        "audio_s": np.array([o[2] for o in out]),
        "quadrant": np.array([QUADRANTS.index(r["quadrant"]) for r in rows]),
        "artist": np.array([r["artist"] for r in rows]),
        "file": np.array([r["file"] for r in rows]),
    }


def fit(X: np.ndarray, y: np.ndarray, c: float = C_REGULARISATION) -> VAModel:
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    clf = LogisticRegression(C=c, max_iter=5000).fit((X - mean) / scale, y)
    return VAModel(mean, scale, clf.coef_, clf.intercept_)


def cross_validate(data: dict[str, np.ndarray], c: float = C_REGULARISATION) -> dict[str, float]:
    """By-artist K-fold: no artist is in both the fitting and the scored part of a fold."""
    from sklearn.model_selection import GroupKFold

    X, y, groups = data["X"], data["quadrant"], data["artist"]
    va = np.zeros((len(y), 2))
    for train, test in GroupKFold(N_FOLDS).split(X, y, groups):
        va[test] = fit(X[train], y[train], c).predict_many(X[test])
    v_true = np.isin(y, (0, 3))
    a_true = np.isin(y, (0, 1))
    v_ok, a_ok = (va[:, 0] > 0) == v_true, (va[:, 1] > 0) == a_true
    return {
        "clips": len(y), "artists": len(np.unique(groups)), "folds": N_FOLDS,
        "quadrant_accuracy": float(np.mean(v_ok & a_ok)),
        "valence_sign_accuracy": float(np.mean(v_ok)),
        "arousal_sign_accuracy": float(np.mean(a_ok)),
        "realtime_factor_per_core": float(data["audio_s"].sum() / data["cpu_s"].sum()),
    }


CARD = """# Audio valence/arousal model (`music_va_model.json`)

- **What**: multinomial logistic regression (L2, C={c}) over the four Russell quadrants on
  {n_feat} standardised audio features of a {excerpt:.0f}-s excerpt (loudness, spectral
  centroid/bandwidth/rolloff/flatness/contrast, zero-crossing rate, spectral flux, onset rate,
  tempo and pulse clarity, major-minor mode and key clarity from chroma, 13 MFCC means, spreads
  and deltas). Valence = P(Q1)+P(Q4)-P(Q2)-P(Q3); arousal = P(Q1)+P(Q2)-P(Q3)-P(Q4), in [-1, 1].
- **Data**: 4Q audio emotion dataset (Panda, Malheiro & Paiva 2018, IEEE TAFFC), the {clips}
  clips by {artists} artists in `shared/data/music_4q` (middle 20 s of AllMusic previews,
  quadrant labels from AllMusic mood tags). Research use only; no clip ships with the package.
- **Validation** (by-artist {folds}-fold cross-validation, no artist on both sides of a fold):
  quadrant accuracy **{quadrant_accuracy:.1%}**, valence sign **{valence_sign_accuracy:.1%}**,
  arousal sign **{arousal_sign_accuracy:.1%}**. Published on the same data: about 67% quadrant F1
  with standard features, 76% with the authors' new features.
- **Speed**: {realtime_factor_per_core:.0f}x real time per core on the fitting machine (decode +
  features, per second of decoded audio, CPU time; a track longer than the excerpt costs no more).
- **Limits**: labels come from editorial mood tags, not listener ratings; Western popular music
  dominates; valence from audio is much weaker than arousal (expect wrong valence signs for about
  a third of tracks). Tags or an imported CSV override the estimate (see the scan's docs).
- **Refit**: `python -m rescnn_appliance.training.music_va --data ../shared/data/music_4q`
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/music_4q"))
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--c", type=float, default=C_REGULARISATION)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cv-only", action="store_true", help="report, do not write the model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (args.data / "annotations.csv").is_file():
        print(f"{args.data}: no annotations.csv (the music_4q folder)", file=sys.stderr)
        return 2
    t0 = time.time()
    data = load_dataset(args.data, args.workers)
    report = cross_validate(data, args.c)
    report["wall_s"] = round(time.time() - t0, 1)
    if not args.cv_only:
        model = fit(data["X"], data["quadrant"], args.c)
        model.meta = {"data": "music_4q (4Q audio emotion dataset)", "C": args.c, **report}
        model.save(args.out)
        args.out.with_suffix(".md").write_text(CARD.format(
            c=args.c, n_feat=len(FEATURE_NAMES), excerpt=EXCERPT_S, **report))
    print(json.dumps(report, indent=1) if args.json else
          "\n".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                    for k, v in report.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
