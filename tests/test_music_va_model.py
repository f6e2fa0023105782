"""The shipped audio valence/arousal model on a few real clips of music_4q (quick)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rescnn_appliance.music.audio_features import FEATURE_NAMES, extract_features
from rescnn_appliance.music.va_model import DEFAULT_PATH, VAModel, VAModelError

pytestmark = pytest.mark.data


def test_shipped_model_gets_the_arousal_of_clear_examples(shared_data: Path) -> None:
    root = shared_data / "music_4q"
    rows = [r for r in csv.DictReader((root / "annotations.csv").open())
            if float(r["pquad"]) >= 0.8]
    picked = [r for q in ("Q1", "Q2", "Q3", "Q4") for r in [x for x in rows
                                                             if x["quadrant"] == q][:3]]
    model = VAModel.load()
    va = np.array([model.predict(extract_features(root / r["file"])) for r in picked])
    arousal_ok = (va[:, 1] > 0) == np.array([r["arousal_sign"] == "1" for r in picked])
    valence_ok = (va[:, 0] > 0) == np.array([r["valence_sign"] == "1" for r in picked])
    assert arousal_ok.mean() >= 0.75 and valence_ok.mean() >= 0.5
    assert np.all(np.abs(va) <= 1.0)


def test_model_card_and_coefficients_agree_with_this_version(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_PATH.read_text())
    assert data["feature_names"] == list(FEATURE_NAMES)
    assert data["meta"]["quadrant_accuracy"] >= 0.60
    card = DEFAULT_PATH.with_suffix(".md").read_text()
    assert f"{data['meta']['quadrant_accuracy']:.1%}" in card
    stale = tmp_path / "old.json"
    stale.write_text(json.dumps({**data, "feature_names": data["feature_names"][:-1]}))
    with pytest.raises(VAModelError, match="refit"):
        VAModel.load(stale)
