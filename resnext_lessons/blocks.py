"""Residual blocks: ResNet's bottleneck and ResNeXt's block in the paper's three forms (chapters 1-2).

Figure 3 of Xie et al. (2017) draws one ResNeXt block three ways that compute the same function:

* form (a): C explicit paths, each 1x1 -> 3x3 -> 1x1, whose outputs are summed ("aggregated");
* form (b): C paths of 1x1 -> 3x3, concatenated, then a single 1x1;
* form (c): a dense 1x1, a grouped 3x3 with ``groups=C``, a dense 1x1.

The widths of a block, with the names chapter 2 defines and every docstring here uses:

* ``planes``: the block's base width (64 in the first stage, doubling per stage);
* d, the bottleneck width: the channels of one path, ``int(planes * bottleneck_width / 64)``,
  so ``bottleneck_width`` is d in the first stage and d doubles per stage;
* the grouped width C*d (``width``): the channels of the grouped 3x3 (all paths side by side);
* the output width 4*planes (``out_channels``): the channels the block returns.

Form (c) is what torchvision and everyone else implement; its submodule names here are the
same as torchvision's ``Bottleneck`` (conv1, bn1, conv2, bn2, conv3, bn3, downsample), so
torchvision's weights load into it strictly. ``to_form`` carries one block's weights between
the three forms, which is how chapter 2 shows they are the same function.
``randomize_batchnorm_`` gives every BN non-trivial statistics, so that a comparison of two
blocks in eval mode cannot hide a misplaced BN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "group_conv_width",
    "ResNeXtBlockA",
    "ResNeXtBlockB",
    "ResNeXtBlockC",
    "ResNetBottleneck",
    "to_form",
    "randomize_batchnorm_",
    "FORMS",
    "EXPANSION",
]

EXPANSION = 4  # a bottleneck block's output width is 4*planes


def _check_positive_ints(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {name}={value!r}."
            )


def group_conv_width(
    planes: int, cardinality: int = 1, bottleneck_width: int = 64
) -> int:
    """The grouped width C*d: channels of the grouped 3x3, ``int(planes * bottleneck_width / 64) * C``.

    d = ``int(planes * bottleneck_width / 64)`` is the bottleneck width (channels per path) at
    this stage: ``bottleneck_width`` is d for the first stage (planes=64), and d doubles with
    ``planes`` in later stages, exactly as torchvision computes it. ResNeXt-50 32x4d's first
    stage: d = int(64 * 4 / 64) = 4, C*d = 32 * 4 = 128.
    """
    _check_positive_ints(
        planes=planes, cardinality=cardinality, bottleneck_width=bottleneck_width
    )
    per_group = int(planes * bottleneck_width / 64)
    if per_group == 0:
        raise ValueError(
            f"Each of the {cardinality} groups would get int({planes} * {bottleneck_width} / 64) = 0 "
            f"channels. Increase bottleneck_width to at least {-(-64 // planes)} "
            f"or planes to at least {-(-64 // bottleneck_width)}."
        )
    return per_group * cardinality


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, kernel_size=1, stride=stride, bias=False
    )


def _conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1
) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=1,
        groups=groups,
        bias=False,
    )


class _Block(nn.Module):
    """What the three forms share: hyper-parameters, BN after the merge, the shortcut.

    Widths: ``planes``; d = ``group_width`` (channels per path); the grouped width C*d =
    ``width``; the output width 4*planes = ``out_channels``.
    """

    expansion = EXPANSION
    form = ""

    def __init__(
        self,
        in_channels: int,
        planes: int,
        cardinality: int = 32,
        bottleneck_width: int = 4,
        stride: int = 1,
    ) -> None:
        super().__init__()
        _check_positive_ints(in_channels=in_channels, planes=planes, stride=stride)
        self.in_channels = in_channels
        self.planes = planes
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        self.stride = stride
        self.width = group_conv_width(planes, cardinality, bottleneck_width)
        self.out_channels = planes * self.expansion

    def _make_shortcut(self) -> nn.Module | None:
        """Projection shortcut (the paper's option B) only where the shape changes, else identity.

        Subclasses assign it last, so state_dict keys come in torchvision's order.
        """
        if self.stride == 1 and self.in_channels == self.out_channels:
            return None
        return nn.Sequential(
            _conv1x1(self.in_channels, self.out_channels, self.stride),
            nn.BatchNorm2d(self.out_channels),
        )

    @property
    def group_width(self) -> int:
        """Channels in one group (path) of the 3x3: the paper's d at this stage.

        Not the grouped width C*d, which is ``width``.
        """
        return self.width // self.cardinality

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects x of shape (N, {self.in_channels}, H, W); "
                f"got {tuple(x.shape)}."
            )

    def _merge(self, transformed: Tensor, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        # In place, as torchvision does: no extra full-size tensors per block (out of place cost
        # about 3% of ResNeXt-50's CPU inference in chapter 10's benchmark).
        transformed += identity
        return torch.relu_(transformed)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, planes={self.planes}, cardinality={self.cardinality}, "
            f"bottleneck_width={self.bottleneck_width}, stride={self.stride}"
        )


class ResNeXtBlockC(_Block):
    """Form (c): dense 1x1 -> grouped 3x3 (groups=C) -> dense 1x1; torchvision's Bottleneck.

    conv1: in_channels -> C*d; conv2: C*d -> C*d in C groups of d; conv3: C*d -> 4*planes.
    x: (N, in_channels, H, W) -> (N, 4*planes, H/stride, W/stride).
    """

    form = "c"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        cardinality: int = 32,
        bottleneck_width: int = 4,
        stride: int = 1,
    ) -> None:
        super().__init__(in_channels, planes, cardinality, bottleneck_width, stride)
        self.conv1 = _conv1x1(in_channels, self.width)
        self.bn1 = nn.BatchNorm2d(self.width)
        # The stride sits on the 3x3, as in torchvision ("ResNet v1.5").
        self.conv2 = _conv3x3(self.width, self.width, stride, groups=cardinality)
        self.bn2 = nn.BatchNorm2d(self.width)
        self.conv3 = _conv1x1(self.width, self.out_channels)
        self.bn3 = nn.BatchNorm2d(self.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = self._make_shortcut()

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._merge(self.bn3(self.conv3(out)), x)


class ResNetBottleneck(ResNeXtBlockC):
    """ResNet's bottleneck block (He et al., 2016): 1x1 -> 3x3 -> 1x1, expansion 4.

    It is form (c) with one path (C = 1) as wide as ``planes`` (d = planes). x:
    (N, in_channels, H, W) -> (N, 4*planes, H/stride, W/stride).
    """

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__(
            in_channels, planes, cardinality=1, bottleneck_width=64, stride=stride
        )


class _PathA(nn.Module):
    """One path of form (a): 1x1 -> 3x3 -> 1x1, from in_channels to out_channels via d."""

    def __init__(
        self, in_channels: int, d: int, out_channels: int, stride: int
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, d)
        self.bn1 = nn.BatchNorm2d(d)
        self.conv2 = _conv3x3(d, d, stride)
        self.bn2 = nn.BatchNorm2d(d)
        self.conv3 = _conv1x1(d, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return self.conv3(out)


class _PathB(nn.Module):
    """One path of form (b): 1x1 -> 3x3, from in_channels to d."""

    def __init__(self, in_channels: int, d: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, d)
        self.bn1 = nn.BatchNorm2d(d)
        self.conv2 = _conv3x3(d, d, stride)
        self.bn2 = nn.BatchNorm2d(d)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)))


class ResNeXtBlockA(_Block):
    """Form (a): C explicit paths T_i, aggregated as a sum: y = x + BN(sum_i T_i(x)).

    Each path: 1x1 in_channels -> d, 3x3 d -> d, 1x1 d -> 4*planes. The paper (Sec. 4,
    implementation details) puts BN after the sum of the paths' last 1x1s, before the shortcut
    is added. x: (N, in_channels, H, W) -> (N, 4*planes, H/stride, W/stride).
    """

    form = "a"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        cardinality: int = 32,
        bottleneck_width: int = 4,
        stride: int = 1,
    ) -> None:
        super().__init__(in_channels, planes, cardinality, bottleneck_width, stride)
        d = self.group_width
        self.paths = nn.ModuleList(
            _PathA(in_channels, d, self.out_channels, stride)
            for _ in range(cardinality)
        )
        self.bn3 = nn.BatchNorm2d(self.out_channels)
        self.downsample = self._make_shortcut()

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        aggregated = self.paths[0](x)
        for path in self.paths[1:]:
            aggregated = aggregated + path(x)
        return self._merge(self.bn3(aggregated), x)


class ResNeXtBlockB(_Block):
    """Form (b): C paths of 1x1 -> 3x3, concatenated, then one dense 1x1 and BN.

    Each path: 1x1 in_channels -> d, 3x3 d -> d; concatenated: C*d; conv3: C*d -> 4*planes.
    x: (N, in_channels, H, W) -> (N, 4*planes, H/stride, W/stride).
    """

    form = "b"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        cardinality: int = 32,
        bottleneck_width: int = 4,
        stride: int = 1,
    ) -> None:
        super().__init__(in_channels, planes, cardinality, bottleneck_width, stride)
        d = self.group_width
        self.paths = nn.ModuleList(
            _PathB(in_channels, d, stride) for _ in range(cardinality)
        )
        self.conv3 = _conv1x1(self.width, self.out_channels)
        self.bn3 = nn.BatchNorm2d(self.out_channels)
        self.downsample = self._make_shortcut()

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        concatenated = torch.cat([path(x) for path in self.paths], dim=1)
        return self._merge(self.bn3(self.conv3(concatenated)), x)


FORMS: dict[str, type[_Block]] = {
    "a": ResNeXtBlockA,
    "b": ResNeXtBlockB,
    "c": ResNeXtBlockC,
}


def randomize_batchnorm_(
    module: nn.Module, generator: torch.Generator | None = None
) -> nn.Module:
    """Give every BatchNorm2d in ``module`` random affine parameters and running statistics.

    A fresh BN is the identity in eval mode (mean 0, variance 1, scale 1, shift 0), so two
    blocks compared with fresh BNs agree even if one has a BN in the wrong place. After this
    call every BN shifts and scales each channel differently: scale and variance uniform in
    [0.5, 1.5), shift and mean uniform in [-0.5, 0.5). In place (hence the trailing
    underscore); returns ``module`` so that calls chain. Draws from ``generator`` when given
    (on the CPU, then copied to each tensor's device), else from torch's global generator.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"randomize_batchnorm_ takes an nn.Module, got {type(module).__name__}."
        )

    def uniform_(tensor: Tensor, low: float, high: float) -> None:
        values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
        tensor.copy_(low + (high - low) * values)

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                if m.affine:
                    uniform_(m.weight, 0.5, 1.5)
                    uniform_(m.bias, -0.5, 0.5)
                if m.track_running_stats:
                    uniform_(m.running_mean, -0.5, 0.5)
                    uniform_(m.running_var, 0.5, 1.5)
    return module


_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _bn_state(bns: list[nn.BatchNorm2d], prefix: str) -> dict[str, Tensor]:
    """Concatenate per-path BN layers into one BN over all their channels."""
    state = {
        f"{prefix}.{t}": torch.cat([getattr(bn, t) for bn in bns]) for t in _BN_TENSORS
    }
    state[f"{prefix}.num_batches_tracked"] = bns[0].num_batches_tracked.clone()
    return state


def _canonical_state(block: _Block) -> dict[str, Tensor]:
    """The block's weights in form (c)'s layout (torchvision's Bottleneck state_dict)."""
    state = {
        k: v.detach().clone()
        for k, v in block.state_dict().items()
        if not k.startswith("paths.")
    }
    if isinstance(block, ResNeXtBlockC):
        return state
    paths = list(block.paths)
    state["conv1.weight"] = torch.cat([p.conv1.weight.detach() for p in paths])
    state.update(_bn_state([p.bn1 for p in paths], "bn1"))
    # Grouped weight (width, d, 3, 3): group g owns output rows [g*d, (g+1)*d).
    state["conv2.weight"] = torch.cat([p.conv2.weight.detach() for p in paths])
    state.update(_bn_state([p.bn2 for p in paths], "bn2"))
    if isinstance(block, ResNeXtBlockA):
        # sum_i W3_i h_i = [W3_1 ... W3_C] [h_1; ...; h_C]: the 1x1s side by side.
        state["conv3.weight"] = torch.cat(
            [p.conv3.weight.detach() for p in paths], dim=1
        )
    return state


def _load_canonical(block: _Block, state: dict[str, Tensor]) -> None:
    """Inverse of ``_canonical_state``: split form (c)'s tensors into the block's layout."""
    if isinstance(block, ResNeXtBlockC):
        block.load_state_dict(state, strict=True)
        return
    d, own = block.group_width, {}
    for i in range(block.cardinality):
        rows = slice(i * d, (i + 1) * d)
        own[f"paths.{i}.conv1.weight"] = state["conv1.weight"][rows]
        own[f"paths.{i}.conv2.weight"] = state["conv2.weight"][rows]
        for bn in ("bn1", "bn2"):
            for t in _BN_TENSORS:
                own[f"paths.{i}.{bn}.{t}"] = state[f"{bn}.{t}"][rows]
            own[f"paths.{i}.{bn}.num_batches_tracked"] = state[
                f"{bn}.num_batches_tracked"
            ]
        if isinstance(block, ResNeXtBlockA):
            own[f"paths.{i}.conv3.weight"] = state["conv3.weight"][:, rows]
    if isinstance(block, ResNeXtBlockB):
        own["conv3.weight"] = state["conv3.weight"]
    for key, value in state.items():
        if key.startswith(("bn3.", "downsample.")):
            own[key] = value
    block.load_state_dict(own, strict=True)


def to_form(block: nn.Module, form: str) -> _Block:
    """A new block of form "a", "b" or "c" computing the same function as ``block``.

    Weights and BatchNorm statistics are carried over (copied, never shared), and the new
    block has the same device, dtype and train/eval mode, so in eval mode its output equals
    the original's to float32 rounding.
    """
    if not isinstance(block, _Block):
        raise ValueError(
            f"to_form takes a ResNeXtBlockA/B/C or ResNetBottleneck, got {type(block).__name__}."
        )
    key = form.lower() if isinstance(form, str) else form
    if key not in FORMS:
        raise ValueError(
            f"form must be one of 'a', 'b', 'c' (the paper's Fig. 3); got {form!r}."
        )
    new = FORMS[key](
        block.in_channels,
        block.planes,
        block.cardinality,
        block.bottleneck_width,
        block.stride,
    )
    reference = next(block.parameters())
    new = new.to(device=reference.device, dtype=reference.dtype)
    _load_canonical(new, _canonical_state(block))
    return new.train(block.training)
