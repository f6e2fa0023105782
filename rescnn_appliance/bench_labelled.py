"""A labelled face set for the bench's accuracy tables (the paper's Table 1 and Table 2).

:func:`load_labelled` reads an npz in either layout of ``../shared/data``: FER2013
(``x_<split>``, ``y_<split>``) or AffectNet (``x48``, ``y_fer``; contempt, ``-1``, is dropped),
or plain ``x`` and ``y``. :func:`condition_faces` gives the faces of one test condition (clean or
one of :data:`~rescnn_appliance.vision.perturb.CONDITIONS`, seeded as ``models evaluate`` does).
:func:`confusion` and :func:`scores` turn predictions into the table's figures.

Example::

    >>> y = np.array([0, 1, 1, 3]); pred = np.array([0, 1, 3, 3])
    >>> confusion(y, pred)[1].tolist()
    [0, 1, 0, 1, 0, 0, 0]
    >>> scores(confusion(y, pred))["accuracy"]
    0.75
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rescnn_appliance.config import ConfigError
from rescnn_appliance.vision.affect import EMOTIONS
from rescnn_appliance.vision.perturb import CONDITIONS, perturb


@dataclass(frozen=True)
class LabelledFaces:
    """48x48 uint8 faces with FER2013 labels (0..6), and where they came from.

    Example::

        >>> LabelledFaces(np.zeros((1, 48, 48), np.uint8), np.zeros(1, np.int64), "x.npz").n
        1
    """

    x: np.ndarray
    y: np.ndarray
    source: str

    @property
    def n(self) -> int:
        return len(self.y)


def load_labelled(path: Path | str, split: str = "val") -> LabelledFaces:
    """Faces and labels from ``path``; :class:`ConfigError` naming the file when unusable."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            for xk, yk in ((f"x_{split}", f"y_{split}"), ("x48", "y_fer"), ("x", "y")):
                if xk in keys and yk in keys:
                    x, y = data[xk], data[yk].astype(np.int64)
                    break
            else:
                raise ConfigError(f"{path}: no faces and labels (x_{split}/y_{split}, x48/y_fer "
                                  f"or x/y) in this npz; it has {', '.join(sorted(keys))}")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (--npz)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path}: not a readable npz ({exc.__class__.__name__})") from None
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (48, 48) or len(x) != len(y):
        raise ConfigError(f"{path}: faces must be uint8 (N,48,48) with N labels, got "
                          f"{x.dtype} {x.shape} and {len(y)} labels")
    keep = (y >= 0) & (y < len(EMOTIONS))
    if not keep.any():
        raise ConfigError(f"{path}: no face has a FER2013 label 0..6")
    return LabelledFaces(np.ascontiguousarray(x[keep]), y[keep], f"{path} [{split}]")


def condition_faces(faces: LabelledFaces, condition: str) -> np.ndarray:
    """The faces as seen under ``condition`` ("clean" or a perturbation)."""
    return faces.x if condition == "clean" else perturb(faces.x, condition)


def conditions() -> list[str]:
    return list(CONDITIONS)


def confusion(y: np.ndarray, pred: np.ndarray, n: int = len(EMOTIONS)) -> np.ndarray:
    """Counts, rows true class, columns predicted class."""
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (np.asarray(y, np.int64), np.asarray(pred, np.int64)), 1)
    return matrix


def scores(matrix: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (over classes present in truth or prediction) of a confusion matrix."""
    total = matrix.sum()
    tp = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(1), matrix.sum(0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    return {"accuracy": float(tp.sum() / total) if total else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0}
