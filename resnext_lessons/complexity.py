"""Counting parameters and multiply-adds, by measurement and in closed form (chapter 4).

The paper reports "FLOPs" as multiply-adds: Sec. 3.1 defines them as "FLOPs (floating-point
operations, in # of multiply-adds)". ``torch.utils.flop_counter`` counts a multiply-add as two
FLOPs, so ``count_flops`` halves its total. Only convolutions and the linear layer are counted
(BatchNorm, ReLU, pooling and the residual additions are negligible and uncounted); the paper
does not say which layers it counts, and this choice reproduces its Table 1 (4.1 and 4.2
billion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .blocks import EXPANSION, _check_positive_ints, group_conv_width
from .grouped import check_groups

__all__ = [
    "count_params",
    "count_flops",
    "LayerStats",
    "breakdown",
    "conv_params",
    "conv_macs",
    "conv_output_size",
    "block_params",
    "block_macs",
    "resnext_params",
    "resnext_macs",
    "template_params",
    "template_split",
    "width_for_cardinality",
    "table2",
]


def count_params(model: nn.Module, trainable_only: bool = False, batchnorm: bool = True) -> int:
    """Number of parameters (running statistics are buffers and never count).

    ``batchnorm=False`` leaves out BatchNorm's scale and shift: the paper's Table 1 figures
    (ResNet-50 25.5M, ResNeXt-50 25.0M) round the count without them (with them, ResNet-50's
    25,557,032 would round to 25.6M).
    """
    skip = set() if batchnorm else {
        id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()
    }
    return sum(
        p.numel() for p in model.parameters() if (p.requires_grad or not trainable_only) and id(p) not in skip
    )


def _input_for(model: nn.Module, input_size: Sequence[int]) -> torch.Tensor:
    size = tuple(input_size)
    if len(size) != 4 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"input_size must be (N, C, H, W) with positive ints, e.g. (1, 3, 224, 224); got {size}.")
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    return torch.zeros(size, device=device, dtype=dtype)


def _run_counted(model: nn.Module, x: torch.Tensor, depth: int) -> FlopCounterMode:
    """One forward pass in eval mode (BN statistics untouched) under the FLOP counter."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=depth) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter


def count_flops(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """Multiply-adds of one forward pass on an input of ``input_size`` = (N, C, H, W).

    Measured with ``torch.utils.flop_counter`` (convolutions and matrix products), halved to
    multiply-adds. ResNeXt-50 32x4d at (1, 3, 224, 224): 4.23e9; ResNet-50: 4.09e9.
    """
    counter = _run_counted(model, _input_for(model, input_size), depth=1)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class LayerStats:
    """One row of a per-layer table: a submodule, its output shape, parameters, multiply-adds."""

    name: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def breakdown(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), depth: int = 1) -> list[LayerStats]:
    """Per-submodule parameters and multiply-adds, for modules ``depth`` levels below ``model``.

    depth=1 gives the stem, each stage (layer1..layer4) and the head; depth=2 each block.
    The rows' ``macs`` add up to ``count_flops`` and their ``params`` to ``count_params``
    (up to parameter-free modules).
    """
    _check_positive_ints(depth=depth)
    modules = [(n, m) for n, m in model.named_modules() if n and n.count(".") == depth - 1]
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape)))
        for n, m in modules
    ]
    try:
        counter = _run_counted(model, _input_for(model, input_size), depth=depth + 1)
    finally:
        for h in hooks:
            h.remove()
    root = type(model).__name__
    flops = {k.removeprefix(root + "."): sum(v.values()) for k, v in counter.get_flop_counts().items()}
    return [
        LayerStats(n, shapes.get(n, ()), count_params(m), flops.get(n, 0) // 2)
        for n, m in modules
        if n in shapes
    ]


# ----------------------------------------------------------------------------- closed forms
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial output size of a convolution: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_params(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, bias: bool = False) -> int:
    """Weights of a (grouped) convolution: C_out * (C_in / groups) * k * k (+ C_out for a bias)."""
    check_groups(in_channels, out_channels, groups)
    return out_channels * (in_channels // groups) * kernel_size**2 + (out_channels if bias else 0)


def conv_macs(
    in_channels: int, out_channels: int, kernel_size: int, out_size: int | tuple[int, int], groups: int = 1
) -> int:
    """Multiply-adds of a convolution per image: its weights times output positions (H_out * W_out)."""
    h, w = (out_size, out_size) if isinstance(out_size, int) else out_size
    return conv_params(in_channels, out_channels, kernel_size, groups) * h * w


def block_params(
    in_channels: int, planes: int, cardinality: int = 1, bottleneck_width: int = 64, stride: int = 1
) -> int:
    """Parameters of a ResNeXt block (form c) exactly: three convolutions, three BNs
    (2 per channel), and the projection shortcut where stride != 1 or channels change."""
    width = group_conv_width(planes, cardinality, bottleneck_width)
    out = planes * EXPANSION
    total = conv_params(in_channels, width, 1) + conv_params(width, width, 3, cardinality)
    total += conv_params(width, out, 1) + 2 * (width + width + out)
    if stride != 1 or in_channels != out:
        total += conv_params(in_channels, out, 1) + 2 * out
    return total


def block_macs(
    in_channels: int,
    planes: int,
    cardinality: int = 1,
    bottleneck_width: int = 64,
    stride: int = 1,
    in_size: int = 56,
) -> int:
    """Multiply-adds of a ResNeXt block's convolutions on an in_size x in_size input, per image."""
    width = group_conv_width(planes, cardinality, bottleneck_width)
    out = planes * EXPANSION
    out_size = conv_output_size(in_size, 3, stride, padding=1)
    total = conv_macs(in_channels, width, 1, in_size) + conv_macs(width, width, 3, out_size, cardinality)
    total += conv_macs(width, out, 1, out_size)
    if stride != 1 or in_channels != out:
        total += conv_macs(in_channels, out, 1, out_size)
    return total


def _stage_blocks(layers: Sequence[int]) -> list[tuple[int, int, int]]:
    """(in_channels, planes, stride) of every block, in order, as ``models.ResNeXt`` builds them."""
    blocks, in_channels = [], 64
    for i, n in enumerate(layers):
        planes = 64 * 2**i
        for j in range(n):
            blocks.append((in_channels, planes, 2 if (i > 0 and j == 0) else 1))
            in_channels = planes * EXPANSION
    return blocks


def resnext_params(
    layers: Sequence[int],
    cardinality: int = 1,
    bottleneck_width: int = 64,
    num_classes: int = 1000,
    stem: str = "imagenet",
) -> int:
    """Parameters of ``models.ResNeXt(layers, cardinality, bottleneck_width, num_classes, stem)``
    in closed form: stem + every block + the linear head."""
    kernel = 7 if stem == "imagenet" else 3
    total = conv_params(3, 64, kernel) + 2 * 64
    total += sum(block_params(c, p, cardinality, bottleneck_width, s) for c, p, s in _stage_blocks(layers))
    features = 64 * 2 ** (len(layers) - 1) * EXPANSION
    return total + features * num_classes + num_classes


def resnext_macs(
    layers: Sequence[int],
    cardinality: int = 1,
    bottleneck_width: int = 64,
    num_classes: int = 1000,
    stem: str = "imagenet",
    image_size: int = 224,
) -> int:
    """Multiply-adds of ``models.ResNeXt`` on one image_size x image_size image, in closed form."""
    if stem == "imagenet":
        size = conv_output_size(image_size, 7, 2, 3)
        total = conv_macs(3, 64, 7, size)
        size = conv_output_size(size, 3, 2, 1)  # max-pool
    else:
        size = image_size
        total = conv_macs(3, 64, 3, size)
    for c, p, s in _stage_blocks(layers):
        total += block_macs(c, p, cardinality, bottleneck_width, s, size)
        size = conv_output_size(size, 3, s, 1)
    features = 64 * 2 ** (len(layers) - 1) * EXPANSION
    return total + features * num_classes


# ------------------------------------------------------------------ the paper's template rules
def template_params(cardinality: int, d: int, channels: int = 256) -> int:
    """The paper's parameter count of a block (Sec. 3.4 "Model Capacity", Table 2): C * (c*d + 3*3*d*d + d*c),
    for a block with ``channels`` = c input and output channels and C paths of width d
    (BN and the shortcut are not counted). ResNet's bottleneck (C=1, d=64): 69,632 ~ 70k."""
    _check_positive_ints(cardinality=cardinality, d=d, channels=channels)
    return cardinality * (channels * d + 9 * d * d + d * channels)


def template_split(cardinality: int, d: int, channels: int = 256) -> tuple[int, int]:
    """``template_params`` by layer: (the two 1x1s' weights, the grouped 3x3's).

    With C paths of width d the two 1x1s are C*d channels wide and hold 2*c*(C*d)
    weights: they depend on the grouped width C*d only. The grouped 3x3 holds
    C*9*d^2 = 9*d*(C*d): at the same C*d it shrinks with d. So narrower paths leave
    more of a fixed budget to wider 1x1s, which is how Table 2's C*d grows
    (64, 80, 96, 112, 128) at equal cost.
    """
    _check_positive_ints(cardinality=cardinality, d=d, channels=channels)
    width = cardinality * d
    return 2 * channels * width, 9 * d * width


def width_for_cardinality(cardinality: int, in_channels: int = 256, reference_width: int = 64) -> int:
    """The bottleneck width d whose block has parameters closest to ResNet's bottleneck of width
    ``reference_width`` (the paper's Table 2: C = 1, 2, 4, 8, 32 gives d = 64, 40, 24, 14, 4).

    Solves C * (2*c*d + 9*d^2) = target for real d, then picks the closer of its floor and ceiling.
    """
    target = template_params(1, reference_width, in_channels)
    _check_positive_ints(cardinality=cardinality)
    # 9C d^2 + 2cC d - target = 0, positive root
    a, b = 9 * cardinality, 2 * in_channels * cardinality
    root = (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates), key=lambda d: abs(template_params(cardinality, d, in_channels) - target))


def table2(cardinalities: Sequence[int] = (1, 2, 4, 8, 32), in_channels: int = 256, reference_width: int = 64) -> list[dict[str, int]]:
    """The paper's Table 2 from code: for each C, the width d, the grouped conv's width C*d, and
    the block's template parameters (all close to ResNet's 69,632)."""
    rows = []
    for c in cardinalities:
        d = width_for_cardinality(c, in_channels, reference_width)
        rows.append({"cardinality": c, "d": d, "group_width": c * d, "params": template_params(c, d, in_channels)})
    return rows
