"""Opening a trained block, for chapter 9: permute its paths, silence them, compare them.

A ResNeXt block in form (c) (``blocks.ResNeXtBlockC``) is 1x1 conv1 -> bn1 -> ReLU -> grouped
3x3 conv2 (C groups of d channels) -> bn2 -> ReLU -> 1x1 conv3 -> bn3. Path g is the group g of
conv2 together with the channels ``g*d .. g*d + d - 1`` of conv1's output and of conv3's input.

- ``permute_paths``: the same block with its paths in another order. Moving conv1's output
  rows, bn1, conv2's groups, bn2 and conv3's input columns together leaves the block's function
  unchanged: the paths are interchangeable by permutation.
- ``silenced``: a context in which some channels of the 3x3 stage (bn2's output) are zero, so
  their paths add nothing to the block; in a ResNet block (C = 1) the same silences single
  channels of the dense 3x3.
- ``silencing_sweep``: accuracy with k units (paths, or channels) silenced, over several draws.
- ``path_responses``, ``cosine_similarity``: how alike the paths respond.
"""

from __future__ import annotations

import copy
import itertools
import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ResNeXtBlockC

__all__ = [
    "path_channels",
    "permute_paths",
    "silenced",
    "accuracy",
    "unit_draws",
    "silencing_sweep",
    "path_responses",
    "cosine_similarity",
]


def _check_block(block: nn.Module) -> ResNeXtBlockC:
    if not isinstance(block, ResNeXtBlockC):
        raise ValueError(
            f"expected a form-(c) block (blocks.ResNeXtBlockC, e.g. model.layer1[0]); got "
            f"{type(block).__name__}. Convert forms (a) and (b) with blocks.to_form(block, 'c')."
        )
    return block


def path_channels(block: ResNeXtBlockC, paths: Sequence[int]) -> list[int]:
    """The channels of the 3x3 stage that belong to ``paths``: path g owns g*d .. g*d + d - 1."""
    block = _check_block(block)
    C, d = block.cardinality, block.group_width
    bad = [g for g in paths if not 0 <= g < C]
    if bad:
        raise ValueError(f"paths {bad} do not exist: this block has {C} paths, numbered 0 to {C - 1}")
    return [g * d + i for g in paths for i in range(d)]


def permute_paths(block: ResNeXtBlockC, order: Sequence[int]) -> ResNeXtBlockC:
    """A copy of ``block`` whose path i is the original's path ``order[i]``.

    Moves, together: conv1's output rows, bn1's weight, bias and running statistics, conv2's
    groups (its rows, in blocks of d: a group's input channels move with it), bn2, and conv3's
    input columns. The copy computes the same function as ``block``: x (N, C_in, H, W) gives
    the same (N, C_out, H', W'). ``order`` must be a permutation of ``range(C)``.
    """
    block = _check_block(block)
    C = block.cardinality
    if sorted(order) != list(range(C)):
        raise ValueError(f"order must be a permutation of 0..{C - 1} (this block has {C} paths); got {list(order)}")
    index = torch.tensor(path_channels(block, order), device=block.conv2.weight.device)
    out = copy.deepcopy(block)
    with torch.no_grad():
        out.conv1.weight.copy_(block.conv1.weight[index])
        out.conv2.weight.copy_(block.conv2.weight[index])  # (C*d, d, 3, 3): rows in whole groups
        out.conv3.weight.copy_(block.conv3.weight[:, index])
        for bn_out, bn in ((out.bn1, block.bn1), (out.bn2, block.bn2)):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn_out, name).copy_(getattr(bn, name)[index])
    return out


@contextmanager
def silenced(block: ResNeXtBlockC, channels: Sequence[int]) -> Iterator[None]:
    """Within the context, ``channels`` of ``block``'s 3x3 stage are zero: a forward hook on
    bn2 zeroes them, and the ReLU after bn2 keeps them at zero, so conv3 receives nothing from
    them. Silencing a path's d channels is removing the path from the block's form (a)."""
    block = _check_block(block)
    width = block.bn2.num_features
    bad = [c for c in channels if not 0 <= c < width]
    if bad:
        raise ValueError(f"channels {bad} do not exist: the 3x3 stage has {width} channels, 0 to {width - 1}")
    index = torch.tensor(sorted(set(channels)), dtype=torch.long)

    def hook(module: nn.Module, inputs: tuple[Tensor], output: Tensor) -> Tensor:
        output = output.clone()
        output[:, index.to(output.device)] = 0
        return output

    handle = block.bn2.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (a fraction) of ``model`` in eval mode; images: (N, 3, H, W), labels: (N,)."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images, and at least one; got {len(images)} and {len(labels)}")
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return correct / len(images)


def unit_draws(units: int, k: int, draws: int, generator: torch.Generator) -> list[tuple[int, ...]]:
    """Sets of ``k`` of ``units`` units: every one of them when there are at most ``draws``
    (an exact average), else ``draws`` sets drawn at random without repeats inside a set."""
    if not 0 <= k <= units or draws < 1:
        raise ValueError(f"need 0 <= k <= units and draws >= 1; got k={k}, units={units}, draws={draws}")
    if math.comb(units, k) <= draws:
        return list(itertools.combinations(range(units), k))
    return [tuple(sorted(torch.randperm(units, generator=generator)[:k].tolist())) for _ in range(draws)]


def silencing_sweep(
    model: nn.Module,
    block: ResNeXtBlockC,
    counts: Sequence[int],
    unit: int,
    images: Tensor,
    labels: Tensor,
    draws: int = 8,
    seed: int = 0,
) -> dict[int, list[float]]:
    """Accuracy of ``model`` with ``k`` units of ``block``'s 3x3 stage silenced, for each k in
    ``counts``: ``{k: [accuracy of each draw]}``. A unit is ``unit`` consecutive channels: the
    group width d to silence whole paths of a ResNeXt, 1 to silence single channels of a
    ResNet's dense 3x3. Draws: see ``unit_draws`` (seeded, so a run is repeatable)."""
    block = _check_block(block)
    width = block.bn2.num_features
    if unit < 1 or width % unit:
        raise ValueError(f"unit={unit} must divide the 3x3 stage's {width} channels")
    units = width // unit
    generator = torch.Generator().manual_seed(seed)
    sweep = {}
    for k in counts:
        sweep[k] = []
        for chosen in unit_draws(units, k, draws, generator):
            channels = [u * unit + i for u in chosen for i in range(unit)]
            with silenced(block, channels):
                sweep[k].append(accuracy(model, images, labels))
    return sweep


@torch.no_grad()
def path_responses(model: nn.Module, block: ResNeXtBlockC, images: Tensor, batch_size: int = 500) -> Tensor:
    """Each path's response: the sum of its d channels after bn2 and the ReLU (what conv3 reads),
    over every image and position. Returns (C, N * H' * W')."""
    block = _check_block(block)
    C, d = block.cardinality, block.group_width
    recorded: list[Tensor] = []
    handle = block.bn2.register_forward_hook(lambda m, i, out: recorded.append(torch.relu(out).cpu()))
    try:
        model.eval()
        device = next(model.parameters()).device
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        handle.remove()
    maps = torch.cat(recorded)  # (N, C * d, H', W')
    return maps.unflatten(1, (C, d)).sum(2).transpose(0, 1).flatten(1)


def cosine_similarity(rows: Tensor) -> Tensor:
    """(G, G) cosine similarities between the rows of ``rows`` (G, M): 1 on the diagonal (0 for a
    row of zeros, a path that never responds)."""
    if rows.dim() != 2:
        raise ValueError(f"rows must be (G, M); got {tuple(rows.shape)}")
    unit = F.normalize(rows.double(), dim=1)
    return (unit @ unit.T).float()
