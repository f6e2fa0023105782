"""How FaceFinder frames FER2013 faces: the calibration behind FER_CROP_SCALE, and eye levelling.

Each FER2013 val face (48x48, exact rows) is upscaled to ``--side`` pixels and pasted into a
mid-gray 640x480 frame, in memory only. The finder's box is compared with where the face was
pasted: if FER2013 faces are "the Haar box, slightly enlarged", the box side over the pasted
side is a bit under 1 and the box is centred. Also reported: how often a face is found, how
well the 48x48 crop lines up with the original (pixel correlation), and how often OpenCV's eye
cascade finds both eyes (what levelling the eyes would need).

    .venv/bin/python benchmarks/faces_framing.py [--data ../shared/data] [--every 3]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from rescnn_appliance.vision.faces import FER_CROP_SCALE, FaceFinder

EYE_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_eye.xml"


def both_eyes_roll(eyes: cv2.CascadeClassifier, frame: np.ndarray,
                   box: tuple[int, int, int, int]) -> float | None:
    """Roll angle (degrees) between two eyes found in the face's upper half, else None."""
    x, y, w, h = box
    upper = frame[y:y + int(h * 0.6), x:x + w]
    found = eyes.detectMultiScale(upper, 1.1, 4, minSize=(w // 8, w // 8),
                                  maxSize=(w // 3, w // 3))
    left = [e for e in found if e[0] + e[2] / 2 < w / 2]
    right = [e for e in found if e[0] + e[2] / 2 >= w / 2]
    if not left or not right:
        return None
    lx, ly, lw, lh = max(left, key=lambda e: e[2])
    rx, ry, rw, rh = max(right, key=lambda e: e[2])
    return math.degrees(math.atan2((ry + rh / 2) - (ly + lh / 2), (rx + rw / 2) - (lx + lw / 2)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--every", type=int, default=3, help="use every Nth val face")
    parser.add_argument("--side", type=int, default=192, help="pasted face side in pixels")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    npz = np.load(args.data / "fer2013" / "fer2013_trainval.npz")
    faces = npz["x_val"][npz["exact_val"]][:: args.every]
    side, x0, y0 = args.side, (640 - args.side) // 2, (480 - args.side) // 2
    finder = FaceFinder()
    eyes = cv2.CascadeClassifier(str(EYE_CASCADE))
    rel, corr, rolls, eyes_found = [], [], [], 0
    for original in faces:
        frame = np.full((480, 640), 128, np.uint8)
        frame[y0:y0 + side, x0:x0 + side] = cv2.resize(original, (side, side),
                                                       interpolation=cv2.INTER_CUBIC)
        finder.reset()
        face = finder.find(frame)
        if face is None:
            continue
        bx, by, bw, bh = face.box
        rel.append(((bx + bw / 2 - x0) / side - 0.5, (by + bh / 2 - y0) / side - 0.5, bw / side))
        corr.append(np.corrcoef(face.crop(48).ravel(), original.ravel())[0, 1])
        roll = both_eyes_roll(eyes, frame, face.box)
        if roll is not None:
            eyes_found += 1
            rolls.append(abs(roll))
    rel_a = np.array(rel)
    found = len(rel)
    print(f"FER2013 val faces: {len(faces)} (every {args.every}th exact row), pasted at "
          f"{side}px in 640x480, detect_scale {finder.detect_scale}")
    print(f"face found: {found} ({found / len(faces):.1%})")
    print(f"box side / pasted side: median {np.median(rel_a[:, 2]):.3f}, "
          f"p10 {np.percentile(rel_a[:, 2], 10):.3f}, p90 {np.percentile(rel_a[:, 2], 90):.3f} "
          f"(FER_CROP_SCALE = {FER_CROP_SCALE} = 1/{1 / FER_CROP_SCALE:.3f})")
    print(f"box centre offset (share of side): x median {np.median(rel_a[:, 0]):+.3f}, "
          f"y median {np.median(rel_a[:, 1]):+.3f}")
    print(f"crop vs original 48x48, pixel correlation: median {np.median(corr):.3f}, "
          f"p10 {np.percentile(corr, 10):.3f}")
    print(f"eye cascade finds both eyes: {eyes_found}/{found} ({eyes_found / max(found, 1):.1%}); "
          f"|roll| median {np.median(rolls) if rolls else float('nan'):.1f} deg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
