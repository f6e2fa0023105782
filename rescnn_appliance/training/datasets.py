"""Face data loaders: the shared npz files, the original ``fer2013.csv``, and image folders.

All loaders return grey uint8 (N,48,48) faces. FER class order throughout:
0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.

Example::

    >>> faces = load_fer("../shared/data/fer2013/fer2013_trainval.npz", "val")  # doctest: +SKIP
    >>> faces.x.shape[1:], faces.y.max()                                        # doctest: +SKIP
    ((48, 48), 6)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# FER+ vote columns, in the npz order, and the FER class each maps to (-1: not an emotion class)
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                   "contempt", "unknown", "not-a-face")
AFFECTNET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
# FER+ column -> AffectNet class index (same emotion words); unknown/not-a-face dropped
FERPLUS_TO_AFFECTNET = (0, 1, 3, 2, 6, 5, 4, 7)
CSV_SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}


class DatasetError(ValueError):
    """A data file that cannot be read as faces; the message names the file."""


@dataclass
class FaceSet:
    """Faces with optional emotion labels, FER+ votes and valence/arousal targets.

    Example::

        >>> s = FaceSet(np.zeros((1, 48, 48), np.uint8), y=np.array([3]))
        >>> len(s)
        1
    """

    x: np.ndarray
    y: np.ndarray | None = None
    ferplus: np.ndarray | None = None
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None
    source: str = ""
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: np.ndarray) -> FaceSet:
        pick = lambda a: None if a is None else a[index]
        return FaceSet(self.x[index], pick(self.y), pick(self.ferplus), pick(self.valence),
                       pick(self.arousal), self.source, {k: v[index] for k, v in self.extra.items()})


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable npz file ({exc})") from None


def is_affectnet_layout(path: Path) -> bool:
    with _open_npz(path) as data:
        return "valence" in data.files


def affectnet_split(labels: np.ndarray, split: str, val_share: float = 0.2, seed: int = 7) -> np.ndarray:
    """Deterministic stratified train/val indices for the AffectNet subset ('all' = every row)."""
    if split == "all":
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        val.extend(idx[: round(len(idx) * val_share)])
    val_mask = np.zeros(len(labels), bool)
    val_mask[np.array(val, dtype=int)] = True
    if split == "val":
        return np.flatnonzero(val_mask)
    if split == "train":
        return np.flatnonzero(~val_mask)
    raise DatasetError(f"unknown AffectNet split {split!r}: use train, val or all")


def load_affectnet(path: Path | str, split: str = "all", size: int = 48) -> FaceSet:
    """AffectNet layout: ``x48``/``x96``, ``valence``, ``arousal``, ``y_fer`` (-1 = no FER class)."""
    path = Path(path)
    with _open_npz(path) as data:
        key = "x96" if size > 48 and "x96" in data.files else "x48"
        missing = {key, "valence", "arousal"} - set(data.files)
        if missing:
            raise DatasetError(f"{path}: missing arrays {sorted(missing)} for the AffectNet layout")
        exp = data["exp_affectnet"] if "exp_affectnet" in data.files else data["y_fer"]
        idx = affectnet_split(exp, split)
        x = data[key][idx]
        if key == "x96":
            x = np.stack([cv2.resize(f, (48, 48), interpolation=cv2.INTER_AREA) for f in x])
        y = data["y_fer"][idx].astype(np.int64) if "y_fer" in data.files else None
        return FaceSet(x, y, None, data["valence"][idx].astype(np.float32),
                       data["arousal"][idx].astype(np.float32), f"{path}:{split}",
                       {"exp_affectnet": exp[idx].astype(np.int64)})


def load_fer_npz(path: Path | str, split: str) -> FaceSet:
    """FER layout: ``x_<split>``, ``y_<split>``, optional ``ferplus_<split>``, ``exact_<split>``."""
    path = Path(path)
    with _open_npz(path) as data:
        if f"x_{split}" not in data.files:
            splits = sorted(k[2:] for k in data.files if k.startswith("x_"))
            raise DatasetError(f"{path}: no split {split!r} (has {', '.join(splits) or 'none'})")
        extra = {k: data[f"{k}_{split}"] for k in ("exact", "ambiguous") if f"{k}_{split}" in data.files}
        ferplus = data[f"ferplus_{split}"] if f"ferplus_{split}" in data.files else None
        y = data[f"y_{split}"].astype(np.int64) if f"y_{split}" in data.files else None
        return FaceSet(data[f"x_{split}"], y, ferplus, source=f"{path}:{split}", extra=extra)


def load_fer_csv(path: Path | str, split: str) -> FaceSet:
    """The original ``fer2013.csv`` (emotion, pixels, Usage); split train, val or test."""
    path = Path(path)
    usage = CSV_SPLITS.get(split)
    if usage is None:
        raise DatasetError(f"{path}: unknown split {split!r}: use train, val or test")
    xs, ys = [], []
    try:
        with path.open(newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                if row.get("Usage") != usage:
                    continue
                try:
                    pixels = np.array(row["pixels"].split(), dtype=np.uint8)
                    label = int(row["emotion"])
                    if pixels.size != 48 * 48 or not 0 <= label < 7:
                        raise ValueError
                except (KeyError, ValueError, AttributeError):
                    raise DatasetError(f"{path}:{line}: bad row (need emotion 0-6 and 2304 pixels)") from None
                xs.append(pixels.reshape(48, 48))
                ys.append(label)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    if not xs:
        raise DatasetError(f"{path}: no rows with Usage {usage}")
    return FaceSet(np.stack(xs), np.array(ys, dtype=np.int64), source=f"{path}:{split}")


def load_image_folder(root: Path | str, split: str | None = None) -> FaceSet:
    """``root/[split/]<class>/*.png`` with class folders named as :data:`FER_CLASSES`."""
    root = Path(root)
    base = root / split if split and (root / split).is_dir() else root
    if not base.is_dir():
        raise DatasetError(f"{base}: folder not found")
    xs, ys = [], []
    for label, name in enumerate(FER_CLASSES):
        for file in sorted((base / name).glob("*")) if (base / name).is_dir() else []:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise DatasetError(f"{file}: not a readable image")
            xs.append(cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA))
            ys.append(label)
    if not xs:
        raise DatasetError(f"{base}: no images in class folders {', '.join(FER_CLASSES)}")
    return FaceSet(np.stack(xs), np.array(ys, dtype=np.int64), source=str(base))


def load_faces(path: Path | str, split: str = "val") -> FaceSet:
    """Any supported layout, chosen from the path: npz (FER or AffectNet), csv, or a folder."""
    path = Path(path)
    if path.is_dir():
        return load_image_folder(path, split)
    if path.suffix == ".csv":
        return load_fer_csv(path, split)
    if path.suffix == ".npz":
        return load_affectnet(path, split) if is_affectnet_layout(path) else load_fer_npz(path, split)
    raise DatasetError(f"{path}: expected an .npz, a fer2013 .csv or an image folder")


def training_rows(faces: FaceSet) -> np.ndarray:
    """Indices fit for training: drop FER+'s excluded (non-exact) and ambiguous duplicate rows."""
    keep = np.ones(len(faces), bool)
    if "exact" in faces.extra:
        keep &= faces.extra["exact"]
    if "ambiguous" in faces.extra:
        keep &= ~faces.extra["ambiguous"]
    return np.flatnonzero(keep)


def balanced_indices(labels: np.ndarray, floor: float, rng: np.random.Generator) -> np.ndarray:
    """Minority upsampling: every class repeated up to ``floor`` x the largest class's count."""
    counts = np.bincount(labels)
    target = int(counts.max() * floor)
    out = [np.arange(len(labels))]
    for cls, n in enumerate(counts):
        if 0 < n < target:
            out.append(rng.choice(np.flatnonzero(labels == cls), target - n, replace=True))
    return np.concatenate(out)


def circumplex_coordinates(affectnet: FaceSet) -> np.ndarray:
    """Mean (valence, arousal) per AffectNet class, estimated from the given AffectNet rows."""
    exp = affectnet.extra["exp_affectnet"]
    coords = np.zeros((len(AFFECTNET_CLASSES), 2), np.float32)
    for cls in range(len(AFFECTNET_CLASSES)):
        m = exp == cls
        coords[cls] = (affectnet.valence[m].mean(), affectnet.arousal[m].mean())
    return coords


FER_TO_AFFECTNET = np.array([6, 5, 4, 1, 2, 3, 0])  # FER class order -> AffectNet class


def expression_distribution(faces: FaceSet) -> np.ndarray:
    """(N,8) distribution over the AffectNet expressions for FER faces: the FER+ votes (contempt
    included; unknown and not-a-face dropped), else one-hot on the FER2013 label."""
    dist = np.eye(len(AFFECTNET_CLASSES), dtype=np.float32)[FER_TO_AFFECTNET[faces.y]]
    if faces.ferplus is not None:
        votes = faces.ferplus[:, :8].astype(np.float32)
        valid = (faces.ferplus[:, 0] >= 0) & (votes.sum(1) > 0)
        dist[valid] = (votes[valid] / votes[valid].sum(1, keepdims=True))[:, np.argsort(FERPLUS_TO_AFFECTNET)]
    return dist


def fer_va_targets(faces: FaceSet, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valence/arousal for FER images: their :func:`expression_distribution` (FER+ votes, else
    the FER2013 label) weighting the per-class coordinates."""
    va = expression_distribution(faces) @ coords
    return va[:, 0].copy(), va[:, 1].copy()
