"""Training loops for the ECNN (emotions) and the MobileNetV3-Small VA regressor.

One loop serves both: minibatches are augmented on a worker thread while the model steps,
weights are averaged (EMA) for evaluation, a checkpoint is written atomically every epoch, and a
run stops at an epoch boundary when ``time_budget_min`` would be exceeded, to be continued with
``resume=True`` in a later sitting. On CUDA it uses automatic mixed precision when asked, and
under ``torchrun`` it trains with DistributedDataParallel (rank 0 writes).

Example::

    $ rescnn-appliance models train-ecnn --epochs 30 --time-budget 95 --resume
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from rescnn_appliance.config import ConfigError
from rescnn_appliance.training.augment import AugmentSettings, FaceAugmenter
from rescnn_appliance.training.metrics import ccc, classification_report
from rescnn_appliance.vision.perturb import perturb
from rescnn_appliance.vision.preprocess import prepare_faces

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in the checkpoint and the model card."""

    task: str  # "ecnn" or "va"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    ema_decay: float = 0.999
    precision: str = "fp32"  # fp32 | mixed
    input_size: int = 48
    balance_floor: float = 0.35
    seed: int = 0
    threads: int = 0  # 0: torch default
    time_budget_min: float = 0.0  # 0: no budget
    limit: int = 0  # use only the first N training rows (smoke runs)
    affectnet_repeat: int = 3  # va: times each AffectNet training face is shown per epoch
    fer_per_epoch: int = 9000  # va: FER faces (FER+-derived targets) drawn afresh per epoch
    init_from: str = ""  # weights (a best.pt state dict) to start from; a fresh schedule, not a resume
    ecnn_blocks: tuple[int, ...] = (0, 1, 1, 1)  # ecnn: residual blocks per stage (nets.ECNN_STAGES)
    va_classes: int = 8  # va: expression classes the head also learns (0: a plain regressor)
    class_loss_weight: float = 1.0  # va: weight of the expression cross-entropy beside 1 - CCC
    teacher: str = ""  # ecnn: weights of a net of the same shape; it sees each face before the noise
    distill_weight: float = 0.5  # ecnn with a teacher: share of the loss that follows the teacher
    distill_temp: float = 2.0  # ecnn with a teacher: softmax temperature of that term
    val_conditions: tuple[str, ...] = ()  # ecnn: also score val under these; best = mean accuracy
    workers: int = 0  # threads augmenting batches ahead of the step; 0: half the CPU cores, at most 8
    augment: AugmentSettings = field(default_factory=AugmentSettings)


def autocast_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def frozen_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` that takes no gradients (EMA weights, a teacher)."""
    frozen = copy.deepcopy(model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def saved_weights(model: nn.Module, path: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (a best.pt), adapted to ``model`` where it knows how (a deeper
    ECNN from a shallower one's weights)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return model.adapt_state(state) if hasattr(model, "adapt_state") else state


class EMA:
    """Exponential moving average of a model's weights (buffers copied as they are)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = frozen_copy(model)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean concordance correlation over valence and arousal, plus a small MSE anchor."""
    pm, tm = pred.mean(0), target.mean(0)
    cov = ((pred - pm) * (target - tm)).mean(0)
    c = 2 * cov / (pred.var(0, unbiased=False) + target.var(0, unbiased=False) + (pm - tm) ** 2 + 1e-8)
    return (1 - c).mean() + 0.5 * F.mse_loss(pred, target)


def va_multitask_loss(out: torch.Tensor, target: torch.Tensor, class_weight: float) -> torch.Tensor:
    """1 - CCC on the two VA columns plus ``class_weight`` x cross-entropy against the soft
    class distribution in the remaining columns (a plain regressor has only the two)."""
    loss = ccc_loss(out[:, :2], target[:, :2])
    if out.shape[1] > 2:
        loss = loss + class_weight * -(target[:, 2:] * F.log_softmax(out[:, 2:], 1)).sum(1).mean()
    return loss


def warm_start(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load ``state`` into ``model``; a tensor whose first dimension grew (a head that now has
    more outputs) fills its leading rows, and tensors the state lacks keep their fresh values.
    Returns the names not copied whole, for the log."""
    own = model.state_dict()
    partial = []
    for name, value in state.items():
        if name not in own:
            raise KeyError(f"warm start: {name} is not in this network")
        target = own[name]
        if target.shape == value.shape:
            target.copy_(value)
        elif target.dim() == value.dim() and target.shape[1:] == value.shape[1:] and target.shape[0] > value.shape[0]:
            target[: value.shape[0]].copy_(value)
            partial.append(name)
        else:
            raise ValueError(f"warm start: {name} has shape {tuple(value.shape)}, the network {tuple(target.shape)}")
    partial.extend(sorted(set(own) - set(state)))
    return partial


@dataclass
class TrainData:
    """Training faces with targets, and a validation set, for one task."""

    x: np.ndarray
    targets: np.ndarray  # int64 labels (ecnn) or float32 (N,2) valence/arousal (va)
    sample_weight_groups: np.ndarray | None
    val_x: np.ndarray
    val_targets: np.ndarray


def compact_optimizer_state(state: dict) -> dict:
    """Momentum buffers in bfloat16: a committed checkpoint stays small, and
    ``Optimizer.load_state_dict`` casts them back to the parameters' dtype on resume."""
    for per_param in state["state"].values():
        for key, value in per_param.items():
            if torch.is_tensor(value) and value.is_floating_point() and value.dim() > 0:
                per_param[key] = value.to(torch.bfloat16)
    return state


def _distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def augment_workers(requested: int) -> int:
    """``requested`` threads, or for 0 half the machine's cores (1 to 8): a GPU is fed by the
    CPU's augmentation (about 4,900 faces a second on one thread here, 6,100 on two)."""
    return requested if requested > 0 else max(1, min(8, (os.cpu_count() or 2) // 2))


def prefetched(make: Callable[[int], Any], count: int, pool: ThreadPoolExecutor, ahead: int) -> Iterator[Any]:
    """``make(0)``, ``make(1)``, ... ``make(count - 1)`` in order, each started ``ahead`` items
    early on ``pool``'s threads.

    Example::

        >>> with ThreadPoolExecutor(2) as pool:
        ...     list(prefetched(lambda i: i * i, 4, pool, ahead=2))
        [0, 1, 4, 9]
    """
    pending = [pool.submit(make, i) for i in range(min(ahead, count))]
    for i in range(count):
        result = pending.pop(0).result()
        if i + ahead < count:
            pending.append(pool.submit(make, i + ahead))
        yield result


def _batches(order: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    for i in range(0, len(order) - batch + 1, batch):
        yield order[i : i + batch]


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, size: int, device: torch.device, batch: int = 512) -> np.ndarray:
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        inp = torch.from_numpy(prepare_faces(x[i : i + batch], size)).to(device)
        outs.append(model(inp).float().cpu().numpy())
    return np.concatenate(outs)


def evaluate_task(task: str, model: nn.Module, x: np.ndarray, targets: np.ndarray, size: int,
                  device: torch.device, conditions: tuple[str, ...] = ()) -> dict[str, float]:
    """Clean val metrics; for the ECNN also ``<condition>_accuracy`` under each named test
    condition (fixed seed, as ``models evaluate --perturb``)."""
    out = predict(model, x, size, device)
    if task == "ecnn":
        rep = classification_report(targets, out.argmax(1))
        metrics = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]}
        for name in conditions:
            pred = predict(model, perturb(x, name), size, device).argmax(1)
            metrics[f"{name}_accuracy"] = float((pred == targets).mean())
        return metrics
    return {"ccc_valence": ccc(targets[:, 0], out[:, 0]), "ccc_arousal": ccc(targets[:, 1], out[:, 1])}


def score_of(task: str, metrics: dict[str, float]) -> float:
    """The figure a run's best epoch is chosen by: ECNN accuracy (the mean over clean and every
    scored condition), VA mean CCC."""
    if task == "ecnn":
        accs = [v for k, v in metrics.items() if k == "accuracy" or k.endswith("_accuracy")]
        return sum(accs) / len(accs)
    return (metrics["ccc_valence"] + metrics["ccc_arousal"]) / 2


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temp: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened logits, scaled by temp^2 (Hinton et al.)."""
    return F.kl_div(F.log_softmax(student / temp, 1), F.log_softmax(teacher / temp, 1),
                    reduction="batchmean", log_target=True) * temp**2


RESUMABLE_CHANGES = ("epochs", "time_budget_min", "threads", "init_from", "workers")


def recipe_changes(recorded: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """Settings of ``cfg`` that differ from a run's recorded config, as ``name old -> new``.

    A resumed run must keep its recipe, or its history would describe a run that never happened;
    only :data:`RESUMABLE_CHANGES` may differ (more epochs continue at the final rate). Settings
    newer than the recorded config are not compared. Example::

        >>> recipe_changes(asdict(TrainConfig(task="ecnn")), TrainConfig(task="ecnn", lr=0.01, threads=1))
        ['lr 0.05 -> 0.01']
    """
    def flat(config: dict[str, Any]) -> dict[str, Any]:  # {"augment": {"noise_p": ..}} -> {"augment.noise_p": ..}
        config = json.loads(json.dumps(config))  # tuples as the history's lists
        return {**{k: v for k, v in config.items() if not isinstance(v, dict)},
                **{f"{k}.{sub}": v for k, d in config.items() if isinstance(d, dict) for sub, v in d.items()}}

    old, new = flat(recorded), flat(asdict(cfg))
    return [f"{k} {old[k]!r} -> {new[k]!r}" for k in new
            if k in old and k not in RESUMABLE_CHANGES and old[k] != new[k]]


def train(model: nn.Module, data: TrainData, cfg: TrainConfig, out_dir: Path, resume: bool,
          make_order: Callable[[np.random.Generator], np.ndarray]) -> dict:
    """Run (or continue) training; returns the history dict also saved as ``history.json``.

    ``make_order(rng)`` returns the row indices for one epoch (balancing happens there).
    """
    rank, world, device = _distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.init_from and not (resume and (out_dir / "last.pt").exists()):
        fresh = warm_start(model, saved_weights(model, cfg.init_from))
        log.info("starting from the weights in %s%s", cfg.init_from,
                 f" (not copied whole: {', '.join(fresh)})" if fresh else "")
    model.to(device, memory_format=torch.channels_last)  # 2-4x faster convs on CPU
    teacher = None
    if cfg.teacher and cfg.task == "ecnn":  # a frozen copy on the device, in the same layout
        teacher = frozen_copy(model)
        teacher.load_state_dict(saved_weights(teacher, cfg.teacher))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = len(make_order(np.random.default_rng(0))) // (cfg.batch_size * world)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                                steps_per_epoch=max(1, steps_per_epoch), pct_start=0.15)
    history: dict = {"config": asdict(cfg), "epochs": [], "best": None}
    start_epoch, step = 0, 0
    last = out_dir / "last.pt"
    if resume and last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        changed = recipe_changes(ck["history"]["config"], cfg)
        if changed:
            raise ConfigError(f"{last}: --resume with a different recipe ({'; '.join(changed)}); "
                              "pass the run's settings again, or start a new run with --out")
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, step, history = ck["epoch"], ck["step"], ck["history"]
        rng.bit_generator.state = ck["rng"]
        log.info("resumed %s at epoch %d", last, start_epoch)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "mixed" and device.type == "cuda")
    augmenter = FaceAugmenter(cfg.augment, size=cfg.input_size)
    started = time.monotonic()
    epoch_seconds: list[float] = []
    workers = augment_workers(cfg.workers)
    pool = ThreadPoolExecutor(max_workers=workers)
    augment = augmenter.pair if teacher is not None else augmenter

    def make_batch(batches: list[np.ndarray], epoch: int, i: int) -> Any:
        # a generator per (seed, rank, epoch, batch): the same batches for any worker count
        return augment(data.x[batches[i]], np.random.default_rng([cfg.seed, rank, epoch, i]))

    for epoch in range(start_epoch, cfg.epochs):
        if cfg.time_budget_min and epoch_seconds:
            used = (time.monotonic() - started) / 60
            if used + max(epoch_seconds) / 60 > cfg.time_budget_min:
                log.info("time budget reached after epoch %d; continue with --resume", epoch)
                break
        t0 = time.monotonic()
        order = make_order(rng)[rank::world]
        batches = list(_batches(order, cfg.batch_size))
        net.train()
        running, seen = 0.0, 0
        made = prefetched(functools.partial(make_batch, batches, epoch), len(batches), pool, ahead=2 * workers)
        bar = tqdm(zip(batches, made),
                   total=len(batches), desc=f"{cfg.task} epoch {epoch + 1}/{cfg.epochs}", disable=rank != 0,
                   mininterval=5.0, leave=False)
        for idx, ready in bar:
            clean, noisy = ready if teacher is not None else (None, ready)
            inp = torch.from_numpy(noisy).to(device).contiguous(memory_format=torch.channels_last)
            target = torch.from_numpy(data.targets[idx]).to(device)
            with torch.autocast(device.type, dtype=autocast_dtype(device), enabled=cfg.precision == "mixed"):
                out = net(inp)
                if cfg.task == "ecnn":
                    loss = F.cross_entropy(out.float(), target, label_smoothing=cfg.label_smoothing)
                    if teacher is not None:
                        with torch.no_grad():
                            taught = teacher(torch.from_numpy(clean).to(device).contiguous(
                                memory_format=torch.channels_last)).float()
                        w = cfg.distill_weight
                        loss = (1 - w) * loss + w * distill_loss(out.float(), taught, cfg.distill_temp)
                else:
                    loss = va_multitask_loss(out.float(), target, cfg.class_loss_weight)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if step < sched.total_steps:
                sched.step()
            ema.update(model, step)
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{running / seen:.4f}")
        epoch_seconds.append(time.monotonic() - t0)
        if rank == 0:
            metrics = evaluate_task(cfg.task, ema.model, data.val_x, data.val_targets, cfg.input_size, device,
                                    tuple(cfg.val_conditions))
            record = {"epoch": epoch + 1, "train_loss": running / max(seen, 1), "seconds": epoch_seconds[-1],
                      "images_per_s": seen * world / epoch_seconds[-1], "lr": sched.get_last_lr()[0], **metrics}
            history["epochs"].append(record)
            if history["best"] is None or score_of(cfg.task, metrics) > score_of(cfg.task, history["best"]):
                history["best"] = record
                torch.save(ema.model.state_dict(), out_dir / "best.pt")
            log.info("%s", json.dumps(record))
            tqdm.write(f"{cfg.task} epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items()))
            ck = {"model": model.state_dict(), "ema": ema.model.state_dict(), "optimizer": compact_optimizer_state(opt.state_dict()),
                  "scheduler": sched.state_dict(), "epoch": epoch + 1, "step": step, "history": history,
                  "rng": rng.bit_generator.state}
            tmp = last.with_suffix(".tmp")
            torch.save(ck, tmp)
            os.replace(tmp, last)
            (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    pool.shutdown()
    return history
