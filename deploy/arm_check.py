"""The aarch64 check that ``deploy/arm-check.sh`` runs: same inputs, this machine vs the Pi's CPU.

``reference`` runs on this machine and writes ``reference.npz``, ``reference.json`` and
``tone.flac`` into a folder; ``check`` runs under ``qemu-aarch64-static -cpu cortex-a53`` with
the device pins (the torch of ``deploy/requirements-pi.txt``) and compares, through the package's own code:

* ``AffectModel.load(models, precision, 1).predict(faces)`` for fp32 and int8 on a fixed batch of
  face-like crops (built from integer arithmetic and numpy's PCG64, so identical everywhere);
* to tell a model difference from a preprocessing one: ``prepare_faces`` (the networks' input
  tensors, in grey levels) and each network run on the *reference's* input tensors;
* ``MoodModel.fit`` (scikit-learn K-means) on a fixed set of valence/arousal points;
* ``soundfile`` decoding of a FLAC file written here, and ``extract_features`` on it.

Example::

    $ PYTHONPATH=. .venv/bin/python deploy/arm_check.py reference --models models --out /tmp/ref
    $ qemu-aarch64-static -cpu cortex-a53 -L ROOT ROOT/usr/bin/python3 -S deploy/arm_check.py \\
          check --models models --reference /tmp/ref
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_FACES = 16
SEED = 20240607
# Largest allowed |difference| between this machine's and the emulated Pi's outputs, for the
# class probabilities and valence/arousal (all in [0, 1] or [-1, 1]). fp32: different torch
# versions and SIMD kernels reorder float sums, nothing more. int8: both sides run qnnpack, but
# x86 and ARM kernels may round a requantisation step differently.
TOLERANCE = {"fp32": 1e-3, "int8": 2e-2}
KMEANS_TOLERANCE = 1e-6
FEATURE_RTOL, FEATURE_ATOL = 1e-4, 1e-5
AUDIO_RATE = 22050
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-pi.txt"


def pinned_torch(requirements: Path = REQUIREMENTS) -> str:
    """The ``torch==X`` version pinned for the Pi, e.g. ``'2.9.1'``."""
    pin = pins_of(requirements).get("torch")
    if pin is None:
        raise SystemExit(f"{requirements}: no torch==VERSION line")
    return pin[1]


def fixed_faces(n: int = N_FACES) -> np.ndarray:
    """(n,48,48) uint8 face-like crops: head oval, eyes, brows, a mouth that curves up or down,
    a lighting ramp and seeded noise. Integer arithmetic only, so every machine makes the same."""
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.int64)
    faces = np.empty((n, 48, 48), np.uint8)
    for i in range(n):
        cx, cy = 24 + int(rng.integers(-3, 4)), 25 + int(rng.integers(-3, 4))
        rx, ry = 15 + int(rng.integers(-2, 3)), 19 + int(rng.integers(-2, 3))
        img = 40 + (xx * int(rng.integers(-2, 3)) + yy * int(rng.integers(-2, 3)))
        head = (xx - cx) ** 2 * ry * ry + (yy - cy) ** 2 * rx * rx <= (rx * ry) ** 2
        img = np.where(head, 150 + int(rng.integers(-30, 31)), img)
        eye_y, gap = cy - 5 + int(rng.integers(-1, 2)), 6 + int(rng.integers(0, 2))
        for ex in (cx - gap, cx + gap):
            img = np.where((xx - ex) ** 2 + (yy - eye_y) ** 2 <= 4, 30, img)
            brow = (np.abs(xx - ex) <= 3) & (yy == eye_y - 4 + int(rng.integers(-1, 2)))
            img = np.where(brow, 50, img)
        curve = int(rng.integers(-2, 3))  # >0 smile, <0 frown
        mouth_y = cy + 8 - (curve * (xx - cx) ** 2) // 24
        mouth = (np.abs(xx - cx) <= 6) & (np.abs(yy - mouth_y) <= int(rng.integers(0, 2)))
        img = np.where(mouth, 40, img)
        img = img + rng.integers(-12, 13, size=(48, 48))
        faces[i] = np.clip(img, 0, 255).astype(np.uint8)
    return faces


def fixed_va_points() -> np.ndarray:
    """60 valence/arousal points around four centres, on a 1/64 grid (exact in binary)."""
    rng = np.random.default_rng(SEED + 1)
    centres = np.array([(40, 10), (32, 45), (16, -35), (-35, -22)])
    offsets = rng.integers(-8, 9, size=(60, 2))
    return (centres[np.arange(60) % 4] + offsets) / 64.0


def tone(seconds: float = 3.0) -> np.ndarray:
    """A deterministic int16 stereo signal: a stepped triangle wave with clicks twice a second."""
    n = int(seconds * AUDIO_RATE)
    t = np.arange(n)
    period = AUDIO_RATE // 220
    tri = np.abs((t % period) * 2 - period) * (16000 // period) - 8000
    clicks = np.where(t % (AUDIO_RATE // 2) < 64, 12000, 0)
    left = np.clip(tri + clicks, -32768, 32767).astype(np.int16)
    return np.stack([left, (left // 2).astype(np.int16)], axis=1)


def network_inputs(models: Path, faces: np.ndarray) -> dict[str, np.ndarray]:
    """The tensors ``AffectModel.predict`` feeds each network (``prepare_faces`` at its size)."""
    from rescnn_appliance.vision.affect import read_card
    from rescnn_appliance.vision.preprocess import FACE_SIZE, prepare_faces

    va_size = int(read_card(models / "va.json").get("input", {}).get("size", FACE_SIZE))
    return {"ecnn": prepare_faces(faces), "va": prepare_faces(faces, va_size)}


def run_models(models: Path, faces: np.ndarray,
               inputs: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Per precision: ``predict(faces)`` through the package, timings, and each network's raw
    output on ``inputs`` (the reference's tensors; default: this machine's own)."""
    import torch

    from rescnn_appliance.vision.affect import AffectModel

    inputs = network_inputs(models, faces) if inputs is None else inputs
    out: dict[str, Any] = {}
    for precision in ("fp32", "int8"):
        t0 = time.perf_counter()
        model = AffectModel.load(models, precision, 1)
        t1 = time.perf_counter()
        probs, valence, arousal = model.predict(faces)
        t2 = time.perf_counter()
        with torch.inference_mode():
            raw = {net: getattr(model, net)(torch.from_numpy(inputs[net])).float().numpy()
                   for net in ("ecnn", "va")}
        out[precision] = {"probs": probs, "valence": valence, "arousal": arousal,
                          "ecnn_raw": raw["ecnn"], "va_raw": raw["va"],
                          "load_s": t1 - t0, "predict_s": t2 - t1}
    return out


def run_kmeans() -> tuple[np.ndarray, list[str]]:
    from rescnn_appliance.mood import MoodModel

    points = fixed_va_points()
    model = MoodModel.fit(points)
    return np.asarray(model.centroids, dtype=np.float64), [model.mood_of(v, a) for v, a in points]


def run_audio(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import soundfile as sf

    from rescnn_appliance.music.audio_features import extract_features

    samples, rate = sf.read(str(path), dtype="int16")
    if rate != AUDIO_RATE:
        raise SystemExit(f"{path}: decoded at {rate} Hz, expected {AUDIO_RATE}")
    return samples, np.asarray(extract_features(path), dtype=np.float64)


def versions() -> dict[str, str]:
    import sklearn
    import soundfile
    import torch

    return {"machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "soundfile": soundfile.__version__, "libsndfile": soundfile.__libsndfile_version__,
            "quantized_engines": ",".join(torch.backends.quantized.supported_engines)}


def reference(args: argparse.Namespace) -> int:
    import soundfile as sf

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = fixed_faces()
    sf.write(str(out / "tone.flac"), tone(), AUDIO_RATE, subtype="PCM_16")
    inputs = network_inputs(Path(args.models), faces)
    results = run_models(Path(args.models), faces, inputs)
    centroids, moods = run_kmeans()
    _, features = run_audio(out / "tone.flac")
    arrays = {"faces": faces, "centroids": centroids, "features": features,
              "ecnn_input": inputs["ecnn"], "va_input": inputs["va"]}
    for precision, r in results.items():
        for key in ("probs", "valence", "arousal", "ecnn_raw", "va_raw"):
            arrays[f"{precision}_{key}"] = r[key]
    np.savez(out / "reference.npz", **arrays)
    (out / "reference.json").write_text(json.dumps({"versions": versions(), "moods": moods}))
    print(f"reference: {len(faces)} faces, fp32 + int8, on {platform.machine()}")
    return 0


def compare(name: str, got: np.ndarray, want: np.ndarray, tol: float, failures: list[str]) -> float:
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    ok = got.shape == want.shape and diff <= tol
    print(f"  {name:<14} max |diff| {diff:.2e}  (tolerance {tol:.0e})  {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(f"{name}: max |diff| {diff:.3g} > {tol:g}" if got.shape == want.shape
                        else f"{name}: shape {got.shape} != {want.shape}")
    return diff


def check(args: argparse.Namespace) -> int:
    ref_dir = Path(args.reference)
    ref = np.load(ref_dir / "reference.npz")
    ref_meta = json.loads((ref_dir / "reference.json").read_text())
    here = versions()
    print(f"emulated: {here['machine']}, python {here['python']}, torch {here['torch']}, "
          f"numpy {here['numpy']}, scikit-learn {here['scikit-learn']}, libsndfile {here['libsndfile']}")
    print(f"reference: {ref_meta['versions']['machine']}, torch {ref_meta['versions']['torch']}")
    failures: list[str] = []
    if here["machine"] != "aarch64":
        failures.append(f"running on {here['machine']}, not aarch64")
    if here["torch"].split("+")[0] != pinned_torch():
        failures.append(f"torch {here['torch']}, not the Pi's {pinned_torch()}")

    faces = ref["faces"]
    if not np.array_equal(fixed_faces(), faces):
        failures.append("the fixed faces differ between the machines")
    report: dict[str, Any] = {"versions": here, "faces": len(faces), "max_diff": {}}
    ref_inputs = {net: ref[f"{net}_input"] for net in ("ecnn", "va")}
    from rescnn_appliance.vision.preprocess import denoise

    print("network inputs (prepare_faces):")
    # the standardisation divides by the cleaned crop's std, so |difference| * std is about grey levels.
    std = np.maximum([denoise(face).std() for face in faces], 4.0)[:, None, None, None]
    for net, tensor in network_inputs(Path(args.models), faces).items():
        if tensor.shape != ref_inputs[net].shape:
            failures.append(f"prepare_faces for {net}: shape {tensor.shape} != {ref_inputs[net].shape}")
            continue
        diff = np.abs(tensor - ref_inputs[net])
        report["max_diff"][f"{net}_input"] = float(diff.max())
        what = f"max |diff| {diff.max():.3g} (about {np.max(diff * std):.0f} grey level(s))"
        print(f"  {net:<5} {tuple(tensor.shape)}  {'bit-exact' if not diff.any() else what}")
        if diff.any():
            failures.append(f"prepare_faces for {net} ({tensor.shape[-1]}x{tensor.shape[-1]}) differs from "
                            f"{ref_meta['versions']['machine']}'s: {what}")
    for precision, r in run_models(Path(args.models), faces, ref_inputs).items():
        print(f"{precision}: load {r['load_s']:.1f} s, {len(faces)} faces {r['predict_s']:.1f} s on {here['machine']}")
        tol = TOLERANCE[precision]
        for key in ("ecnn_raw", "va_raw"):  # the networks alone, on identical input tensors
            report["max_diff"][f"{precision}_{key}"] = compare(
                f"{precision} {key}", r[key], ref[f"{precision}_{key}"], tol, failures)
        for key in ("probs", "valence", "arousal"):  # end to end through AffectModel.predict
            report["max_diff"][f"{precision}_{key}"] = compare(
                f"{precision} {key}", r[key], ref[f"{precision}_{key}"], tol, failures)
        agree = float(np.mean(r["probs"].argmax(1) == ref[f"{precision}_probs"].argmax(1)))
        report[f"{precision}_top_class_agreement"] = agree
        print(f"  top class agrees on {agree:.0%} of faces")

    centroids, moods = run_kmeans()
    print("K-means moods (scikit-learn):")
    compare("centroids", centroids, ref["centroids"], KMEANS_TOLERANCE, failures)
    if moods != ref_meta["moods"]:
        failures.append("K-means assigns different moods to the fixed points")

    samples, features = run_audio(ref_dir / "tone.flac")
    print("audio (soundfile FLAC decode, extract_features):")
    if not np.array_equal(samples, tone()):
        failures.append("tone.flac decodes to different samples")
    print(f"  decoded {samples.shape[0]} frames x {samples.shape[1]} channels, "
          f"{'bit-exact' if np.array_equal(samples, tone()) else 'DIFFERENT'}")
    close = np.allclose(features, ref["features"], rtol=FEATURE_RTOL, atol=FEATURE_ATOL)
    print(f"  {len(features)} features {'match' if close else 'DIFFER'} (rtol {FEATURE_RTOL:g})")
    if not close:
        failures.append("audio features differ")

    # apt's picamera2 imports simplejpeg; the pinned wheel must work with the pinned numpy 2.
    try:
        import simplejpeg

        jpeg = simplejpeg.encode_jpeg(np.ascontiguousarray(np.repeat(faces[0][:, :, None], 3, 2)))
        shape = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY").shape
        print(f"simplejpeg {simplejpeg.__version__}: JPEG round trip {shape}")
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        failures.append(f"simplejpeg: {exc.__class__.__name__}: {exc}")

    report["failures"] = failures
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if failures:
        print("arm check FAILED: " + "; ".join(failures))
        return 1
    print("arm check passed")
    return 0


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_of(requirements: Path) -> dict[str, tuple[str, str]]:
    """``{canonical name: (line, version)}`` of a file of ``name==version`` lines."""
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise SystemExit(f"{requirements}: '{line}' is not pinned with ==")
            pins[canonical(name)] = (line, version.strip())
    return pins


def remove_distribution(site: Path, info: Path) -> None:
    """Delete the files an installed wheel's RECORD lists, then its emptied folders, then the
    ``.dist-info`` itself last, so an interrupted removal is redone by the next run."""
    record = info / "RECORD"
    paths = [row.split(",")[0] for row in record.read_text().splitlines()] if record.is_file() else []
    paths = [rel for rel in paths if rel and not rel.startswith("..") and not rel.startswith(info.name + "/")]
    for rel in paths:
        (site / rel).unlink(missing_ok=True)
    for folder in sorted({(site / rel).parent for rel in paths}, key=lambda f: len(f.parts), reverse=True):
        while folder != site and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    shutil.rmtree(info)


def prune_site(site: Path, requirements: Path) -> list[str]:
    """Remove from a ``pip install --target`` folder every distribution not pinned at its
    installed version; return the pin lines still to install. Example: after ``torch==2.10.0``
    became ``torch==2.9.1`` it removes torch 2.10.0 and returns ``['torch==2.9.1']``."""
    pins = pins_of(requirements)
    installed = set()
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if pins.get(canonical(name), ("", None))[1] == version:
            installed.add(canonical(name))
        else:
            remove_distribution(site, info)
            print(f"arm-check: removed {info.name} from {site}", file=sys.stderr)
    return [line for name, (line, _) in pins.items() if name not in installed]


def prune_site_command(args: argparse.Namespace) -> int:
    for line in prune_site(Path(args.site), Path(args.requirements)):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("reference", help="outputs on this machine")
    p.add_argument("--models", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=reference)
    p = sub.add_parser("check", help="outputs on the emulated Pi, compared with the reference")
    p.add_argument("--models", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--json", default="", help="also write a JSON report here")
    p.set_defaults(func=check)
    p = sub.add_parser("prune-site", help="drop unpinned wheels from a --target folder, print pins to install")
    p.add_argument("--site", required=True)
    p.add_argument("--requirements", default=str(REQUIREMENTS))
    p.set_defaults(func=prune_site_command)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
