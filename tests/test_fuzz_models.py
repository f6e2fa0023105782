"""Fuzz the model card and loader: anything on disk -> a loaded model or one ModelError line.

The sha256 check runs before ``torch.jit.load``; these cases also hand the loader garbage whose
digest *matches* its card, so the TorchScript reader itself meets bad archives.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rescnn_appliance.vision.affect import AffectModel, ModelError, load_verified, read_card
from tests.fuzz_count import FuzzCount, fuzz_settings

COUNT = FuzzCount()
FAST = fuzz_settings(50)
_report_count = COUNT.reporter("models")


class _Tiny(torch.nn.Module):
    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(48 * 48, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x.flatten(1)))


def _archive(outputs: int) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(_Tiny(outputs).eval(), torch.zeros(1, 1, 48, 48)), buf)
    return buf.getvalue()


REAL = {"ecnn": _archive(7), "va": _archive(2)}


def _one_line(exc: ModelError, *names: str) -> None:
    message = str(exc)
    assert "\n" not in message, message
    assert any(n in message for n in names), (names, message)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4), max_leaves=10)


@FAST
@given(card=json_values | st.fixed_dictionaries({"variants": json_values}))
def test_random_card_json(tmp_path: Path, card: Any) -> None:
    COUNT.add("card json")
    path = tmp_path / "ecnn.json"
    path.write_text(json.dumps(card))
    try:
        loaded = read_card(path)
    except ModelError as exc:
        _one_line(exc, str(path))
        return
    assert isinstance(loaded["variants"], dict)


@FAST
@given(data=st.binary(max_size=400))
def test_random_card_bytes(tmp_path: Path, data: bytes) -> None:
    COUNT.add("card bytes")
    path = tmp_path / "ecnn.json"
    path.write_bytes(data)
    try:
        read_card(path)
    except ModelError as exc:
        _one_line(exc, str(path))


variant = st.fixed_dictionaries({}, optional={
    "file": st.one_of(st.sampled_from(["ecnn_fp32.pt", "../../etc/passwd", "", ".", "x/ecnn_fp32.pt",
                                       "\x00"]),
                        st.text(st.characters(blacklist_categories=("Cc",)), max_size=12), st.integers()),
    "sha256": st.one_of(st.sampled_from(["match", "", "0" * 64]), st.text(max_size=64),
                        st.integers()),
})


@FAST
@given(precision=st.sampled_from(["fp32", "int8", "FP32", ""]), card_variant=variant,
       payload=st.sampled_from(["real", "garbage", "truncated", "flipped", "empty"]),
       cut=st.integers(0, 10_000), noise=st.binary(min_size=1, max_size=64))
def test_card_and_file_combinations(tmp_path: Path, precision: str, card_variant: dict,
                                    payload: str, cut: int, noise: bytes) -> None:
    """Any card entry and any file -> the verified model or one ModelError line."""
    COUNT.add("card + file")
    real = REAL["ecnn"]
    data = {"real": real, "garbage": noise * 50, "truncated": real[: cut % len(real)],
            "flipped": real[:cut % len(real)] + bytes([real[cut % len(real)] ^ 0xFF])
            + real[cut % len(real) + 1:], "empty": b""}[payload]
    (tmp_path / "ecnn_fp32.pt").write_bytes(data)
    entry = dict(card_variant)
    if entry.get("sha256") == "match":
        entry["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "ecnn.json").write_text(json.dumps({"variants": {precision or "fp32": entry}}))
    try:
        module, _card = load_verified(tmp_path, "ecnn", precision)
    except ModelError as exc:
        _one_line(exc, str(tmp_path), "models.precision")
        return
    # Only an archive whose digest its card names may load.
    file = tmp_path / Path(entry["file"]).name
    assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]
    assert module(torch.zeros(1, 1, 48, 48)).shape[-1] == 7


@fuzz_settings(12)
@given(which=st.sampled_from(["ecnn", "va"]), start=st.integers(0, 10_000),
       junk=st.binary(min_size=1, max_size=200))
def test_model_folder_with_corrupt_archive_matching_its_card(tmp_path: Path, which: str,
                                                            start: int, junk: bytes) -> None:
    """An archive spliced with junk and a card that vouches for it: ModelError, not a crash."""
    COUNT.add("AffectModel.load")
    for name, real in REAL.items():
        data = real
        if name == which:
            at = start % len(real)
            data = real[:at] + junk + real[at + len(junk):]
        (tmp_path / f"{name}_fp32.pt").write_bytes(data)
        (tmp_path / f"{name}.json").write_text(json.dumps({"variants": {"fp32": {
            "file": f"{name}_fp32.pt", "sha256": hashlib.sha256(data).hexdigest()}},
            "input": {"size": 48}}))
    try:
        model = AffectModel.load(tmp_path, "fp32", threads=1)
    except ModelError as exc:
        _one_line(exc, f"{which}_fp32.pt")
        return
    probs, valence, _arousal = model.predict(torch.zeros(2, 48, 48, dtype=torch.uint8).numpy())
    assert probs.shape == (2, 7) and valence.shape == (2,)


def test_known_bug_deeply_nested_card_is_one_line(tmp_path: Path) -> None:
    """json.loads recurses per bracket: RecursionError escapes read_card (affect.py)."""
    COUNT.add("card json")
    path = tmp_path / "ecnn.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match=r"ecnn\.json: unreadable model card"):
        read_card(path)
