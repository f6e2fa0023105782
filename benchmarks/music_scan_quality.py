"""How well the scan's audio estimate of valence/arousal matches music_4q, and how fast it runs.

    .venv/bin/python benchmarks/music_scan_quality.py [--data ../shared/data/music_4q]
        [--speed-clips 60]

1. By-artist 5-fold cross-validation of the shipped model recipe (the same code as
   ``python -m rescnn_appliance.training.music_va --cv-only``): quadrant accuracy, valence-sign
   and arousal-sign accuracy. Targets: >= 60%, >= 68%, >= 88%.
2. The shipped model (fitted on all clips) on every clip: in-sample figures, for reference only.
3. Speed on one core: decode + features + model for ``--speed-clips`` clips in this process,
   CPU seconds against seconds of audio decoded (target >= 200x real time), decoding alone,
   which libsndfile decoded, and what that means for full-length tracks, where only a 30-s
   excerpt is decoded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rescnn_appliance.music.audio_features import (
    EXCERPT_S,
    features_from_samples,
    read_excerpt,
    use_system_libsndfile,
)
from rescnn_appliance.music.va_model import VAModel
from rescnn_appliance.training.music_va import cross_validate, load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "music_4q"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--speed-clips", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--speed-only", action="store_true", help="skip the cross-validation")
    args = ap.parse_args()
    if args.speed_only:
        import csv

        files = [r["file"] for r in csv.DictReader((args.data / "annotations.csv").open())]
        speed(args, np.array(files), VAModel.load())
        return 0

    data = load_dataset(args.data, args.workers)
    cv = cross_validate(data)
    print(f"by-artist {cv['folds']}-fold CV on {cv['clips']} clips / {cv['artists']} artists:")
    print(f"  quadrant accuracy   {cv['quadrant_accuracy']:.1%}  (target >= 60%)")
    print(f"  valence sign        {cv['valence_sign_accuracy']:.1%}  (target >= 68%)")
    print(f"  arousal sign        {cv['arousal_sign_accuracy']:.1%}  (target >= 88%)")

    model = VAModel.load()
    va = model.predict_many(data["X"])
    y = data["quadrant"]
    v_ok = (va[:, 0] > 0) == np.isin(y, (0, 3))
    a_ok = (va[:, 1] > 0) == np.isin(y, (0, 1))
    print(f"shipped model, in-sample: quadrant {np.mean(v_ok & a_ok):.1%}, valence "
          f"{np.mean(v_ok):.1%}, arousal {np.mean(a_ok):.1%}")

    speed(args, data["file"], model)
    return 0


def speed(args, all_files: np.ndarray, model: VAModel) -> None:
    """CPU time of this process (not wall time: the machine may be shared), one clip first
    untimed (it imports the FFT and builds the filterbanks, once per scan worker)."""
    files = [args.data / f for f in all_files[:: max(1, len(all_files) // args.speed_clips)]]
    files = files[: args.speed_clips]
    model.predict(features_from_samples(*read_excerpt(files[0])[:2]))
    print(f"decoder: libsndfile at {use_system_libsndfile()}")
    audio_s = decode_cpu = 0.0
    t0 = time.process_time()
    for f in files:
        t_dec = time.process_time()
        mono, rate, _ = read_excerpt(f)
        decode_cpu += time.process_time() - t_dec
        model.predict(features_from_samples(mono, rate))
        audio_s += len(mono) / rate
    cpu = time.process_time() - t0
    per_clip = cpu / len(files)
    print(f"speed, one core: {len(files)} clips, {audio_s:.0f} s of audio in {cpu:.2f} CPU s = "
          f"{audio_s / cpu:.0f}x real time ({per_clip * 1000:.0f} ms per clip)")
    print(f"  of which decoding {decode_cpu / len(files) * 1000:.0f} ms per clip "
          f"({audio_s / decode_cpu:.0f}x), features + model "
          f"{(cpu - decode_cpu) / len(files) * 1000:.0f} ms ({audio_s / (cpu - decode_cpu):.0f}x)")
    print(f"  a 4-minute track (only a {EXCERPT_S:.0f}-s excerpt is decoded): about "
          f"{240 / (per_clip * EXCERPT_S / (audio_s / len(files))):.0f}x real time")

if __name__ == "__main__":
    raise SystemExit(main())
