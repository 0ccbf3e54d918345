"""Grouped convolution from scratch (chapter 3).

A convolution with ``groups=G`` splits its input channels into G equal parts, runs one
ordinary (dense) convolution on each part with its own slice of the filters, and stacks
the G results along the channel axis. This module writes that out in plain PyTorch so the
book can compare it with ``torch.nn.functional.conv2d(..., groups=G)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["check_groups", "grouped_conv2d", "block_diagonal_weight"]


def check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    """Raise ``ValueError`` unless ``groups`` splits both channel counts evenly."""
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got groups={groups!r}.")
    for name, channels in (("input", in_channels), ("output", out_channels)):
        if channels % groups != 0:
            # Suggest only values that split both sides: the common divisors.
            common = [g for g in range(1, min(in_channels, out_channels) + 1)
                      if in_channels % g == 0 and out_channels % g == 0]
            raise ValueError(
                f"groups={groups} does not divide the {channels} {name} channels "
                f"({channels} / {groups} = {channels / groups:.3g}); choose groups from the common "
                f"divisors of {in_channels} input and {out_channels} output channels: {common}."
            )


def _check_conv_args(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be (N, C, H, W); got {x.dim()} dimensions {tuple(x.shape)}.")
    if weight.dim() != 4:
        raise ValueError(
            f"weight must be (C_out, C_in/groups, kH, kW); got shape {tuple(weight.shape)}."
        )
    in_channels, out_channels = x.shape[1], weight.shape[0]
    check_groups(in_channels, out_channels, groups)
    if weight.shape[1] * groups != in_channels:
        raise ValueError(
            f"weight has {weight.shape[1]} input channels per group, so with groups={groups} it "
            f"expects {weight.shape[1] * groups} input channels, but x has {in_channels}. "
            f"A grouped weight has shape (C_out, C_in/groups, kH, kW) = "
            f"({out_channels}, {in_channels // groups}, kH, kW) here."
        )
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(
            f"bias must have shape ({out_channels},), one value per output channel; "
            f"got {tuple(bias.shape)} (groups={groups})."
        )


def grouped_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    groups: int = 1,
) -> Tensor:
    """Grouped 2-D convolution written as G dense convolutions (split, transform, concatenate).

    x: (N, C_in, H, W); weight: (C_out, C_in/groups, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out), equal to ``F.conv2d(x, weight, bias, stride, padding,
    groups=groups)`` up to float rounding. Group g sees input channels
    ``[g*C_in/G, (g+1)*C_in/G)`` and produces output channels ``[g*C_out/G, (g+1)*C_out/G)``.
    """
    _check_conv_args(x, weight, bias, groups)
    xs = x.chunk(groups, dim=1)
    ws = weight.chunk(groups, dim=0)
    bs = bias.chunk(groups) if bias is not None else [None] * groups
    outs = [F.conv2d(xg, wg, bg, stride=stride, padding=padding) for xg, wg, bg in zip(xs, ws, bs)]
    return torch.cat(outs, dim=1)


def block_diagonal_weight(weight: Tensor, groups: int) -> Tensor:
    """The dense weight that does the same work as a grouped one: zeros off the diagonal blocks.

    weight: (C_out, C_in/groups, kH, kW) -> (C_out, C_in, kH, kW). A dense convolution with the
    result equals the grouped convolution with ``weight``; only a fraction 1/groups of its
    entries is non-zero, which is where a grouped layer's saving in parameters comes from.
    """
    if weight.dim() != 4:
        raise ValueError(f"weight must be 4-D (C_out, C_in/groups, kH, kW); got {tuple(weight.shape)}.")
    out_channels, per_group_in = weight.shape[:2]
    check_groups(per_group_in * groups, out_channels, groups)
    per_group_out = out_channels // groups
    dense = weight.new_zeros(out_channels, per_group_in * groups, *weight.shape[2:])
    for g in range(groups):
        rows = slice(g * per_group_out, (g + 1) * per_group_out)
        cols = slice(g * per_group_in, (g + 1) * per_group_in)
        dense[rows, cols] = weight[rows]
    return dense
