"""Inference with the two shipped TorchScript models: 7 emotion probabilities, valence, arousal.

Each model file is checked against the sha256 in its model card *before* ``torch.jit.load``, since
a TorchScript archive can carry code; a missing, truncated or altered file is refused with one
line naming it. Needs only torch and numpy.

Example::

    >>> import numpy as np
    >>> model = AffectModel.load("models", precision="fp32", threads=1)   # doctest: +SKIP
    >>> probs, valence, arousal = model.predict(np.zeros((2, 48, 48), np.uint8))  # doctest: +SKIP
    >>> probs.shape, valence.shape                                        # doctest: +SKIP
    ((2, 7), (2,))
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rescnn_appliance.vision.preprocess import check_faces, prepare_faces, prepare_inputs

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PRECISIONS = ("fp32", "int8")


class ModelError(Exception):
    """A model or model card that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class AffectReading:
    """What the models saw in one face at one moment.

    Example::

        >>> r = AffectReading(t=0.0, probs=(0, 0, 0, 1, 0, 0, 0), valence=0.6, arousal=0.2)
        >>> r.emotion, r.confidence
        ('happy', 1)
    """

    t: float
    probs: tuple[float, ...]
    valence: float
    arousal: float

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return max(self.probs)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: model card not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model card ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:
        raise ModelError(f"{path}: unreadable model card (nested too deeply)") from None
    if not isinstance(card, dict) or not isinstance(card.get("variants"), dict):
        raise ModelError(f"{path}: model card has no 'variants' table")
    return card


def load_verified(models_dir: Path, name: str, precision: str) -> tuple[Any, dict[str, Any]]:
    """Load ``<name>`` at ``precision`` from ``models_dir`` after checking its sha256."""
    import torch

    if precision not in PRECISIONS:
        raise ModelError(f"models.precision must be fp32 or int8, got {precision!r}")
    card_path = models_dir / f"{name}.json"
    card = read_card(card_path)
    variant = card["variants"].get(precision)
    if not isinstance(variant, dict) or not isinstance(variant.get("file"), str) \
            or not isinstance(variant.get("sha256"), str):
        raise ModelError(f"{card_path}: no {precision} variant with file and sha256")
    file = models_dir / Path(variant["file"]).name
    if not file.name.isprintable():
        raise ModelError(f"{card_path}: {precision} file name {variant['file']!r} is not a plain name")
    if not file.is_file():
        raise ModelError(f"{file}: model file missing")
    digest = sha256_of(file)
    if digest != variant["sha256"]:
        raise ModelError(f"{file}: sha256 {digest[:12]}... does not match its card {card_path.name}; "
                         "the file is truncated or altered")
    if precision == "int8":
        torch.backends.quantized.engine = "qnnpack" if "qnnpack" in torch.backends.quantized.supported_engines \
            else torch.backends.quantized.engine
    try:
        module = torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad archive
        raise ModelError(f"{file}: cannot load TorchScript ({exc.__class__.__name__})") from None
    module.eval()
    return module, card


class AffectModel:
    """Both face models behind one call: uint8 (N,48,48) crops -> probabilities, valence, arousal.

    Example::

        >>> m = AffectModel.load("models")                                    # doctest: +SKIP
        >>> m.read(np.zeros((48, 48), np.uint8), t=1.0).emotion              # doctest: +SKIP
        'neutral'
    """

    def __init__(self, ecnn: Any, va: Any, ecnn_card: dict[str, Any], va_card: dict[str, Any],
                 precision: str) -> None:
        self.ecnn, self.va = ecnn, va
        self.ecnn_card, self.va_card = ecnn_card, va_card
        self.precision = precision
        self.va_size = int(va_card.get("input", {}).get("size", 48))

    @classmethod
    def load(cls, models_dir: Path | str, precision: str = "fp32", threads: int = 1) -> AffectModel:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        models_dir = Path(models_dir)
        if not models_dir.is_dir():
            raise ModelError(f"{models_dir}: models folder not found (set models.dir)")
        ecnn, ecnn_card = load_verified(models_dir, "ecnn", precision)
        va, va_card = load_verified(models_dir, "va", precision)
        return cls(ecnn, va, ecnn_card, va_card, precision)

    def predict(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,48,48) uint8 -> probs (N,7) float32, valence (N,), arousal (N,) in [-1, 1]."""
        import torch

        faces = check_faces(faces)
        x48, xva = self.inputs(faces)
        with torch.inference_mode():
            logits = self.ecnn(torch.from_numpy(x48))
            va = self.va(torch.from_numpy(xva))
        probs = torch.softmax(logits.float(), 1).numpy()
        va = va.float().numpy()
        return probs, va[:, 0].copy(), va[:, 1].copy()

    def inputs(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,48,48) uint8 crops -> the ECNN's and the VA net's inputs (the same array at 48)."""
        if self.va_size == 48:
            x48 = prepare_faces(faces)
            return x48, x48
        x48, xva = prepare_inputs(faces, (48, self.va_size))
        return x48, xva

    def read(self, face: np.ndarray, t: float | None = None) -> AffectReading:
        """One face crop -> one :class:`AffectReading` stamped with ``t`` (default: now)."""
        probs, v, a = self.predict(face)
        return AffectReading(time.monotonic() if t is None else t, tuple(float(p) for p in probs[0]),
                             float(v[0]), float(a[0]))
