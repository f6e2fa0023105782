"""The pipeline's cost per frame in multiply-accumulates (MACs), and a Raspberry Pi 3 estimate.

Counted exactly: the two networks' convolutions and linear layers (``count_macs``, the figure in
the model cards when ``models/`` has them, else counted on the architectures). Estimated from the
geometry of the search: the Haar cascade's face finding (windows per frame x operations per
window) and the preprocessing of one crop.

Pi 3 assumptions (Cortex-A53 at 1.2 GHz, one core, sustained rather than peak):

- fp32 convolutions: NEON issues a 4-lane FMLA every 2 cycles, 2 MACs/cycle = 2.4 GMAC/s peak;
  small 48-64 px feature maps and depthwise layers keep PyTorch near 40% of it: **1.0 GMAC/s**.
- int8 (QNNPACK): about twice fp32 on A53: **2.0 GMAC/s**.
- Haar cascade and image filters: scalar, memory-bound lookups on an in-order core:
  **0.5 G operations/s**; about **250 operations per window** (about 15 Haar features evaluated on
  average, at ~16 operations each: stage 0 has 9 features and most windows stop in the first
  two stages), plus ~8 operations per pixel per scale to resize and build the integral images.

Example::

    $ .venv/bin/python benchmarks/macs_estimate.py --models models
    $ .venv/bin/python benchmarks/macs_estimate.py --summary ~/.local/state/rescnn-appliance/bench/<run>/summary.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rescnn_appliance.config import load_settings
from rescnn_appliance.vision import faces as F

PI3_FP32_MACS = 1.0e9
PI3_INT8_MACS = 2.0e9
PI3_SCALAR_OPS = 0.5e9
OPS_PER_WINDOW = 250
OPS_PER_PIXEL_PER_SCALE = 8
HAAR_WINDOW = 24


def haar_ops(width: int, height: int, min_side: float, max_side: float,
             factor: float = 1.1) -> tuple[int, int]:
    """(windows, operations) of one ``detectMultiScale`` over a ``width`` x ``height`` image."""
    windows = ops = 0
    scale = 1.0
    while True:
        side = HAAR_WINDOW * scale
        w, h = int(width / scale), int(height / scale)
        if w < HAAR_WINDOW or h < HAAR_WINDOW or (max_side and side > max_side):
            break
        if side >= min_side:
            step = 1 if scale > 2 else 2  # OpenCV: every 2nd position at small scales
            n = math.ceil((w - HAAR_WINDOW + 1) / step) * math.ceil((h - HAAR_WINDOW + 1) / step)
            windows += n
            ops += n * OPS_PER_WINDOW + w * h * OPS_PER_PIXEL_PER_SCALE
        scale *= factor
    return windows, ops


def face_finding(settings, frame_w: int, frame_h: int, face_side: int) -> dict[str, dict]:
    """A tracking frame (window search around the last face) and a full-frame search."""
    s = settings.faces.detect_scale
    full_w, full_h = int(frame_w * s), int(frame_h * s)
    full = haar_ops(full_w, full_h, settings.faces.min_face * s, 0)
    full_ops = full[1] + frame_w * frame_h * 2  # the downscale
    k = min(1.0, F.TRACK_FACE_PX / face_side)
    patch = int(face_side * (1 + 2 * settings.faces.track_margin) * k)
    lo, hi = F.TRACK_SIZE_RANGE
    window = haar_ops(patch, patch, face_side * k * lo, face_side * k * hi)
    window_ops = window[1] + int((face_side * (1 + 2 * settings.faces.track_margin)) ** 2 * 2)
    return {"window": {"windows": window[0], "ops": window_ops, "patch_px": patch},
            "full": {"windows": full[0], "ops": full_ops, "image_px": f"{full_w}x{full_h}"}}


def preprocess_ops(face_side: int, va_size: int) -> int:
    """Crop resize (INTER_AREA), 3x3 median (~30 ops/px), 3x3 Gaussian (9), standardise (5)."""
    crop = int(face_side * F.FER_CROP_SCALE) ** 2 * 2
    per_image = 48 * 48 * (30 + 9 + 5)
    va = 0 if va_size == 48 else va_size * va_size * (4 + 5)
    return crop + per_image + va


def model_macs(models_dir: Path) -> dict[str, dict]:
    out = {}
    for name, size in (("ecnn", 48), ("va", 64)):
        card_path = models_dir / f"{name}.json"
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        size = int(card.get("input", {}).get("size", size))
        if "macs" in card:
            out[name] = {"macs": int(card["macs"]), "size": size, "from": str(card_path)}
            continue
        from rescnn_appliance.training.nets import (
            build_ecnn,
            build_va_mobilenet,
            count_macs,
        )

        net = build_ecnn() if name == "ecnn" else build_va_mobilenet()
        out[name] = {"macs": count_macs(net, (1, size, size)), "size": size,
                     "from": "counted on the architecture (no card)"}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--face", type=int, default=120, help="face side in frame pixels (640x480)")
    ap.add_argument("--summary", type=Path, default=None,
                    help="a bench summary.json: also the effective rates measured on its board")
    args = ap.parse_args()
    settings = load_settings(None, {"models.dir": str(args.models)} if args.models else {})
    nets = model_macs(settings.models_dir)
    finding = face_finding(settings, 640, 480, args.face)
    prep = preprocess_ops(args.face, nets["va"]["size"])
    macs = nets["ecnn"]["macs"] + nets["va"]["macs"]

    def ms(ops: float, rate: float) -> float:
        return ops / rate * 1e3

    rows = [
        ("faces (tracking frame)", finding["window"]["ops"], "ops", ms(finding["window"]["ops"], PI3_SCALAR_OPS), None),
        ("faces (full search)", finding["full"]["ops"], "ops", ms(finding["full"]["ops"], PI3_SCALAR_OPS), None),
        ("preprocess", prep, "ops", ms(prep, PI3_SCALAR_OPS), None),
        ("ecnn", nets["ecnn"]["macs"], "MACs", ms(nets["ecnn"]["macs"], PI3_FP32_MACS), ms(nets["ecnn"]["macs"], PI3_INT8_MACS)),
        ("va", nets["va"]["macs"], "MACs", ms(nets["va"]["macs"], PI3_FP32_MACS), ms(nets["va"]["macs"], PI3_INT8_MACS)),
    ]
    print("| stage | cost per frame | Pi 3 fp32 ms (1 core) | Pi 3 int8 ms (1 core) |")
    print("|---|---|---|---|")
    for name, ops, unit, fp32, int8 in rows:
        print(f"| {name} | {ops / 1e6:.2f} M {unit} | {fp32:.1f} | {'-' if int8 is None else f'{int8:.1f}'} |")
    track = finding["window"]["ops"] + prep
    full = finding["full"]["ops"] + prep
    for label, other in (("tracking frame", track), ("full-search frame", full)):
        fp32 = ms(other, PI3_SCALAR_OPS) + ms(macs, PI3_FP32_MACS)
        int8 = ms(other, PI3_SCALAR_OPS) + ms(macs, PI3_INT8_MACS)
        print(f"| **{label}** | {macs / 1e6:.1f} M MACs + {other / 1e6:.2f} M ops | "
              f"**{fp32:.1f}** ({1e3 / fp32:.0f} fps) | **{int8:.1f}** ({1e3 / int8:.0f} fps) |")
    print(f"\nwindows: tracking {finding['window']['windows']} on a {finding['window']['patch_px']} px "
          f"patch; full search {finding['full']['windows']} on {finding['full']['image_px']}")
    for name, n in nets.items():
        print(f"{name}: {n['macs'] / 1e6:.2f} M MACs at {n['size']}x{n['size']} ({n['from']})")
    if args.summary:
        summary = json.loads(args.summary.read_text())
        for g in summary["groups"]:
            st = g["stages"]
            if "ecnn" in st and "va" in st:
                rate = macs / ((st["ecnn"]["p50"] + st["va"]["p50"]) / 1e3)
                print(f"measured {g['variant']} on {summary['run']['board']}: ECNN+VA p50 "
                      f"{st['ecnn']['p50'] + st['va']['p50']:.2f} ms = {rate / 1e9:.2f} GMAC/s effective")
            if "faces" in st:
                rate = finding["window"]["ops"] / (st["faces"]["p50"] / 1e3)
                print(f"measured {g['variant']}: faces p50 {st['faces']['p50']:.2f} ms = "
                      f"{rate / 1e9:.2f} G ops/s effective (on a tracking frame's estimate)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
