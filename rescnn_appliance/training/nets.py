"""The two networks: ECNN (7 emotions from 48x48 grey) and MobileNetV3-Small (valence, arousal).

Both are written as readable tables of block settings, after torchvision's ``mobilenetv3.py``,
without depending on torchvision.

Example::

    >>> import torch
    >>> ecnn = build_ecnn()
    >>> ecnn(torch.zeros(2, 1, 48, 48)).shape
    torch.Size([2, 7])
    >>> va = build_va_mobilenet()
    >>> va(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# --------------------------------------------------------------------------------------------
# ECNN: a residual VGG-style CNN. Each stage halves the resolution with a strided conv, then
# runs `blocks` residual blocks of two 3x3 convs, each followed by a channel attention
# (squeeze-excitation) gate. Sized from measured throughput on a 2-core CPU.


@dataclass(frozen=True)
class EcnnStage:
    """One ECNN stage: output channels, residual blocks, whether it downsamples first."""

    channels: int
    blocks: int
    stride: int


ECNN_STAGES: tuple[EcnnStage, ...] = (
    # 48x48 -> 24x24 -> 12x12 -> 6x6 -> 3x3
    EcnnStage(channels=32, blocks=0, stride=2),
    EcnnStage(channels=64, blocks=1, stride=2),
    EcnnStage(channels=128, blocks=1, stride=2),
    EcnnStage(channels=256, blocks=1, stride=2),
)
ECNN_STEM = 32


def ecnn_stages(blocks: Sequence[int] | None = None) -> tuple[EcnnStage, ...]:
    """:data:`ECNN_STAGES` with other residual block counts per stage (``None``: as they are)."""
    if blocks is None:
        return ECNN_STAGES
    if len(blocks) != len(ECNN_STAGES):
        raise ValueError(f"ECNN blocks: need {len(ECNN_STAGES)} counts, one per stage, got {list(blocks)}")
    return tuple(EcnnStage(s.channels, int(b), s.stride) for s, b in zip(ECNN_STAGES, blocks))


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: scale each channel by a gate computed from its global average.

    Example::

        >>> SqueezeExcitation(16, 8)(torch.ones(1, 16, 4, 4)).shape
        torch.Size([1, 16, 4, 4])
    """

    def __init__(self, channels: int, squeezed: int, gate: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.fc2(F.relu(self.fc1(s), inplace=True))
        return x * self.gate(s)


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an SE gate and an identity shortcut.

    Example::

        >>> ResidualBlock(32)(torch.zeros(1, 32, 6, 6)).shape
        torch.Size([1, 32, 6, 6])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(channels, channels),
            conv_bn(channels, channels, act=False),
            SqueezeExcitation(channels, max(8, channels // 8)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x), inplace=True)


class ECNN(nn.Module):
    """Emotion CNN: (N,1,48,48) standardised grey faces -> (N,7) logits, FER2013 class order.

    Example::

        >>> ECNN()(torch.zeros(1, 1, 48, 48)).shape
        torch.Size([1, 7])
    """

    def __init__(
        self, stages: Sequence[EcnnStage] = ECNN_STAGES, stem: int = ECNN_STEM,
        num_classes: int = 7, dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(1, stem)]
        cin = stem
        for stage in stages:
            layers.append(conv_bn(cin, stage.channels, stride=stage.stride))
            layers.extend(ResidualBlock(stage.channels) for _ in range(stage.blocks))
            cin = stage.channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

        self.blocks = tuple(stage.blocks for stage in stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))

    def _layout(self, blocks: Sequence[int]) -> list[tuple[int, ...]]:
        """What each index of ``features`` is: (-1,) the stem, (stage,) a downsampling conv,
        (stage, k) the k-th residual block of that stage."""
        layout: list[tuple[int, ...]] = [(-1,)]
        for stage, n in enumerate(blocks):
            layout += [(stage,)] + [(stage, k) for k in range(n)]
        return layout

    def adapt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map the weights of an ECNN with fewer residual blocks onto this one (a warm start).

        The blocks the state lacks start as identities (the scale of their last BatchNorm is
        zero, so the block adds nothing before the ReLU it shares with its input, which is
        already non-negative): the deeper net first computes exactly what the shallower one did.
        """
        kinds: dict[int, bool] = {}
        for name in state:
            if name.startswith("features."):
                index = int(name.split(".")[1])
                kinds[index] = kinds.get(index, False) or ".body." in name
        old_blocks, stage = [0] * len(self.blocks), -1
        for index in sorted(kinds)[1:]:
            if kinds[index]:
                old_blocks[stage] += 1
            else:
                stage += 1
        if tuple(old_blocks) == self.blocks:
            return state
        if any(o > n for o, n in zip(old_blocks, self.blocks)):
            raise ValueError(f"warm start: the weights have blocks {old_blocks}, more than this ECNN's {list(self.blocks)}")
        new_index = {key: i for i, key in enumerate(self._layout(self.blocks))}
        old_layout = self._layout(old_blocks)
        out = {}
        for name, value in state.items():
            if name.startswith("features."):
                _, index, rest = name.split(".", 2)
                name = f"features.{new_index[old_layout[int(index)]]}.{rest}"
            out[name] = value
        with torch.no_grad():
            for key, i in new_index.items():
                if len(key) == 2 and key[1] >= old_blocks[key[0]]:
                    self.features[i].body[1][1].weight.zero_()
        return out


def build_ecnn(blocks: Sequence[int] | None = None, **kwargs: object) -> ECNN:
    """The ECNN, optionally with other residual block counts per stage (see :func:`ecnn_stages`)."""
    return ECNN(stages=ecnn_stages(blocks), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# MobileNetV3-Small (Howard et al. 2019, table 2), with a 1-channel input and a 2-value tanh head.


@dataclass(frozen=True)
class InvertedResidualConfig:
    """One bneck row of MobileNetV3's table: kernel, expansion, output, SE, activation, stride."""

    kernel: int
    expanded: int
    out: int
    use_se: bool
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int


MOBILENET_V3_SMALL: tuple[InvertedResidualConfig, ...] = (
    InvertedResidualConfig(3, 16, 16, True, "RE", 2),
    InvertedResidualConfig(3, 72, 24, False, "RE", 2),
    InvertedResidualConfig(3, 88, 24, False, "RE", 1),
    InvertedResidualConfig(5, 96, 40, True, "HS", 2),
    InvertedResidualConfig(5, 240, 40, True, "HS", 1),
    InvertedResidualConfig(5, 240, 40, True, "HS", 1),
    InvertedResidualConfig(5, 120, 48, True, "HS", 1),
    InvertedResidualConfig(5, 144, 48, True, "HS", 1),
    InvertedResidualConfig(5, 288, 96, True, "HS", 2),
    InvertedResidualConfig(5, 576, 96, True, "HS", 1),
    InvertedResidualConfig(5, 576, 96, True, "HS", 1),
)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_act(cin: int, cout: int, k: int, stride: int, groups: int, act: type[nn.Module] | None) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV3 bneck: expand 1x1, depthwise kxk, optional SE, project 1x1, residual if shapes match.

    Example::

        >>> cfg = InvertedResidualConfig(3, 72, 24, False, "RE", 1)
        >>> InvertedResidual(24, cfg)(torch.zeros(1, 24, 8, 8)).shape
        torch.Size([1, 24, 8, 8])
    """

    def __init__(self, cin: int, cfg: InvertedResidualConfig) -> None:
        super().__init__()
        act = nn.Hardswish if cfg.activation == "HS" else nn.ReLU
        self.use_res = cfg.stride == 1 and cin == cfg.out
        layers: list[nn.Module] = []
        if cfg.expanded != cin:
            layers.append(_conv_bn_act(cin, cfg.expanded, 1, 1, 1, act))
        layers.append(_conv_bn_act(cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride, cfg.expanded, act))
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, _make_divisible(cfg.expanded // 4), gate=F.hardsigmoid))
        layers.append(_conv_bn_act(cfg.expanded, cfg.out, 1, 1, 1, None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV3VA(nn.Module):
    """MobileNetV3-Small regressor: (N,1,S,S) standardised grey faces -> (N,2) valence, arousal in [-1,1].

    ``first_stride`` 1 would keep more resolution for small inputs; 2 is the paper's stem.

    With ``classes`` > 0 the head also scores that many expression classes and the output is
    ``tanh(coords(softmax(logits)) + residual)``: the class-weighted mean of learnt per-class
    (valence, arousal) coordinates plus a per-face correction. Valence and arousal then follow
    the expression the net recognises, which AffectNet's annotations mostly do (the per-class
    means alone reach CCC 0.93 / 0.92 on the subset's val rows). In training mode the class
    logits follow the two outputs, (N, 2 + classes), for the multi-task loss; in eval mode
    (and so in every export) the output is (N,2).

    Example::

        >>> MobileNetV3VA()(torch.zeros(1, 1, 64, 64)).shape
        torch.Size([1, 2])
        >>> MobileNetV3VA(classes=8).train()(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, settings: Sequence[InvertedResidualConfig] = MOBILENET_V3_SMALL,
        last_channels: int = 1024, first_stride: int = 2, dropout: float = 0.2, outputs: int = 2,
        classes: int = 0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(1, 16, 3, first_stride, 1, nn.Hardswish)]
        cin = 16
        for cfg in settings:
            layers.append(InvertedResidual(cin, cfg))
            cin = cfg.out
        head = 6 * cin
        layers.append(_conv_bn_act(cin, head, 1, 1, 1, nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.outputs = outputs
        self.head = nn.Sequential(
            nn.Linear(head, last_channels), nn.Hardswish(inplace=True), nn.Dropout(dropout),
            nn.Linear(last_channels, outputs + classes),
        )
        # class probabilities -> (valence, arousal) before the tanh; set_class_coordinates fills it
        self.coords = nn.Linear(classes, outputs, bias=False) if classes else None

    def set_class_coordinates(self, coords: torch.Tensor) -> None:
        """Start the per-class coordinates at ``coords`` (classes, outputs), given in [-1, 1]."""
        assert self.coords is not None, "a plain regressor has no class coordinates"
        with torch.no_grad():
            self.coords.weight.copy_(torch.atanh(coords.clamp(-0.95, 0.95)).T)

    def head_scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-face correction (N, outputs), expression logits (N, classes)) before the tanh."""
        out = self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))
        return out[:, : self.outputs], out[:, self.outputs :]

    def va_from(self, residual: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Valence, arousal for expression probabilities (N, classes), or any class weights."""
        assert self.coords is not None, "a plain regressor has no class coordinates"
        return torch.tanh(self.coords(probs) + residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual, logits = self.head_scores(x)
        if self.coords is None:
            return torch.tanh(residual)
        va = self.va_from(residual, torch.softmax(logits, 1))
        return torch.cat([va, logits], 1) if self.training else va


def build_va_mobilenet(**kwargs: object) -> MobileNetV3VA:
    return MobileNetV3VA(**kwargs)  # type: ignore[arg-type]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and linear layers)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total
