"""Training curves and confusion matrices as PNG files, written beside the model card.

Example::

    >>> plot_confusion([[5, 1], [2, 7]], ["a", "b"], Path("/tmp/cm.png"), "demo")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_curves(history: dict[str, Any], metrics: Sequence[str], path: Path, title: str) -> None:
    """Loss and validation curves; a metric only some epochs recorded (a run that also scored a
    noise condition) is drawn where it exists."""
    epochs = [e["epoch"] for e in history["epochs"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [e["train_loss"] for e in history["epochs"]], marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss", title=f"{title}: loss")
    for m in metrics:
        values = [e.get(m, np.nan) for e in history["epochs"]]
        if not all(np.isnan(values)):
            ax2.plot(epochs, values, marker="o", label=m)
    ax2.set(xlabel="epoch", ylabel="validation", title=f"{title}: validation")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
