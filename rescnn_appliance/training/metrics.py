"""Evaluation metrics: accuracy, macro-F1, per-class recall, confusion matrix, CCC, RMSE, Pearson r.

Example::

    >>> import numpy as np
    >>> classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), num_classes=2)["accuracy"]
    0.6666666666666666
    >>> round(ccc(np.array([0.1, 0.5, -0.2]), np.array([0.1, 0.5, -0.2])), 6)
    1.0
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 7) -> dict:
    labels = list(range(num_classes))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(num_classes), where=support > 0)
    return {
        "n": len(y_true),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class_recall": [float(r) for r in recall],
        "confusion_matrix": cm.tolist(),
    }


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient."""
    mt, mp = y_true.mean(), y_pred.mean()
    cov = ((y_true - mt) * (y_pred - mp)).mean()
    return float(2 * cov / (y_true.var() + y_pred.var() + (mt - mp) ** 2 + 1e-12))


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """CCC, RMSE and Pearson r for one dimension."""
    r = float(np.corrcoef(y_true, y_pred)[0, 1]) if y_true.std() > 0 and y_pred.std() > 0 else 0.0
    return {"ccc": ccc(y_true, y_pred), "rmse": float(np.sqrt(((y_true - y_pred) ** 2).mean())), "pearson_r": r}
