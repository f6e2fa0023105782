"""Export trained weights to TorchScript (fp32 and int8) and write each model's card.

int8 is post-training static quantisation (FX graph mode) with the qnnpack engine, the one
PyTorch uses on ARM, calibrated on a few hundred training faces. Cards are JSON for the code and
Markdown for people; both carry the sha256 that :mod:`rescnn_appliance.vision.affect` checks.

Example::

    $ rescnn-appliance models export --checkpoints checkpoints --out models
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rescnn_appliance.training.nets import count_macs, count_parameters
from rescnn_appliance.vision.preprocess import prepare_faces


def sha256_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def script_fp32(model: nn.Module, size: int) -> torch.jit.ScriptModule:
    """Trace and freeze with channels-last weights: on one core the frozen convs then take the
    oneDNN path, 2x faster for the ECNN and 15% for the VA net (benchmarks/export_layout.py);
    the caller's NCHW input is unchanged."""
    model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    example = torch.zeros(1, 1, size, size)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    return torch.jit.freeze(traced)


CALIBRATION_BATCH = 64


def int8_qconfig_mapping(n_batches: int) -> Any:
    """qnnpack's default mapping, except that each activation's range is the running mean of the
    per-batch min/max over ``n_batches`` calibration batches instead of the extremes over all of
    them. The extremes come from a few outlier faces and cost the plain VA regressor about 0.05 of
    valence CCC on val (fp32 0.432, stock 0.386, mean per-batch 0.430); which is better depends on
    the network, so the export tries both (benchmarks/int8_calibration.py)."""
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver, default_weight_observer

    activation = MovingAverageMinMaxObserver.with_args(quant_min=0, quant_max=255, reduce_range=False,
                                                       averaging_constant=1.0 / max(1, n_batches))
    return get_default_qconfig_mapping("qnnpack").set_global(QConfig(activation=activation,
                                                                     weight=default_weight_observer))


def quantize_int8(model: nn.Module, calibration: np.ndarray, size: int, per_batch_ranges: bool = True) -> torch.jit.ScriptModule:
    """Post-training static int8 (FX mode, qnnpack), calibrated on ``calibration`` uint8 faces in
    batches of 64; ``per_batch_ranges=False`` gives qnnpack's stock observers (for comparison)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "qnnpack"
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(1, 1, size, size)
    n_batches = -(-len(calibration) // CALIBRATION_BATCH)
    mapping = int8_qconfig_mapping(n_batches) if per_batch_ranges else get_default_qconfig_mapping("qnnpack")
    prepared = prepare_fx(model, mapping, (example,))
    with torch.no_grad():
        for i in range(0, len(calibration), CALIBRATION_BATCH):
            prepared(torch.from_numpy(prepare_faces(calibration[i : i + CALIBRATION_BATCH], size)))
    quantized = convert_fx(prepared)
    with torch.no_grad():
        traced = torch.jit.trace(quantized, example)
    return torch.jit.freeze(traced)


def latency_ms(module: Any, size: int, runs: int = 200) -> float:
    """Median single-face latency on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.zeros(1, 1, size, size)
    times = []
    with torch.inference_mode():
        for _ in range(20):
            module(x)
        for _ in range(runs):
            t = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    return float(np.median(times) * 1000)


def save_module(module: torch.jit.ScriptModule, path: Path) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    module.save(str(tmp))
    tmp.replace(path)
    return {"file": path.name, "sha256": sha256_bytes(path), "bytes": path.stat().st_size}


def describe(model: nn.Module, size: int) -> dict[str, Any]:
    return {"parameters": count_parameters(model), "macs": count_macs(model, (1, size, size))}


def write_card(out_dir: Path, name: str, card: dict[str, Any], markdown: str) -> None:
    card = {**card, "torch_version": torch.__version__}
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(markdown)
