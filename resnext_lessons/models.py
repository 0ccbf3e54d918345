"""Whole networks: ResNet and ResNeXt for ImageNet and CIFAR, and the seed post's model (chapters 5-7).

``ResNeXt`` is one class for both families: cardinality 1 with bottleneck width 64 is ResNet.
Module and parameter names follow torchvision's ``ResNet`` (conv1, bn1, layer1..layer4, fc),
so ``model.load_state_dict(torchvision_model.state_dict(), strict=True)`` works for every
ImageNet builder below.
"""

from __future__ import annotations

import difflib
import socket
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import EXPANSION, ResNeXtBlockC, _check_positive_ints

__all__ = [
    "ResNeXt",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext29",
    "SeedResNextBottleNeck",
    "SeedResNext",
    "seed_resnext50",
    "seed_resnext101",
    "seed_resnext152",
    "MODEL_BUILDERS",
    "MODEL_NAMES",
    "get_model",
    "ImageNetWeights",
    "load_imagenet_weights",
]

STEMS = ("imagenet", "cifar")


class ResNeXt(nn.Module):
    """ResNet/ResNeXt backbone with a linear classifier (Table 1 of the paper).

    layers: blocks per stage, e.g. [3, 4, 6, 3] for the 50-layer nets, [3, 3, 3] for CIFAR's
    ResNeXt-29. The widths of stage i, with the names chapters 2 and 5 use:

    * planes = 64 * 2**i;
    * d, the bottleneck width (channels per path): int(planes * bottleneck_width / 64),
      so ``bottleneck_width`` is d in the first stage, and d doubles per stage
      (32x4d: 4, 8, 16, 32);
    * the grouped width C*d (cardinality * d): the channels of the grouped 3x3;
    * the output width 4*planes: the channels every block of the stage returns.

    Each block carries them as ``planes``, ``group_width`` (d), ``width`` (C*d) and
    ``out_channels`` (4*planes); ``stages()`` returns the stages in order.

    Every stage but the first halves the resolution on its first block's 3x3.
    stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3/1 conv with 64 channels, no pool).
    x: (N, 3, H, W) -> logits (N, num_classes).
    """

    def __init__(
        self,
        layers: Sequence[int],
        cardinality: int = 1,
        bottleneck_width: int = 64,
        num_classes: int = 1000,
        stem: str = "imagenet",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        layers = list(layers)
        if not layers or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in layers):
            raise ValueError(
                f"layers must be a non-empty list of positive block counts, e.g. [3, 4, 6, 3]; got {layers!r}."
            )
        _check_positive_ints(num_classes=num_classes)
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}; got {stem!r}.")
        self.layers = layers
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        self.stem = stem

        imagenet = stem == "imagenet"
        # CIFAR's 32x32 inputs keep their resolution: the paper's CIFAR nets start with one 3x3.
        self.conv1 = (
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            if imagenet
            else nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        )
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if imagenet else nn.Identity()

        in_channels = 64
        self.stage_names: list[str] = []
        for i, blocks in enumerate(layers):
            planes = 64 * 2**i
            stage = self._make_layer(in_channels, planes, blocks, stride=1 if i == 0 else 2)
            name = f"layer{i + 1}"
            setattr(self, name, stage)
            self.stage_names.append(name)
            in_channels = planes * EXPANSION
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_features = in_channels

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual branch starts as zero, so every block starts as the identity.
            for m in self.modules():
                if isinstance(m, ResNeXtBlockC):
                    nn.init.zeros_(m.bn3.weight)

    def _make_layer(self, in_channels: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        def block(c_in: int, s: int) -> ResNeXtBlockC:
            return ResNeXtBlockC(c_in, planes, self.cardinality, self.bottleneck_width, s)

        out_channels = planes * EXPANSION
        return nn.Sequential(block(in_channels, stride), *(block(out_channels, 1) for _ in range(blocks - 1)))

    def stages(self) -> list[nn.Sequential]:
        """The residual stages in order (layer1, layer2, ...)."""
        return [getattr(self, name) for name in self.stage_names]

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, 3, H, W) -> last stage's feature map (N, num_features, H', W')."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNeXt expects images of shape (N, 3, H, W); got {tuple(x.shape)}.")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 3, H, W) -> logits (N, num_classes)."""
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


def resnet50(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNet-50 (He et al., 2016), torchvision-compatible: 25,557,032 parameters."""
    return ResNeXt([3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet101(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNet-101, torchvision-compatible."""
    return ResNeXt([3, 4, 23, 3], num_classes=num_classes, **kwargs)


def resnet152(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNet-152, torchvision-compatible."""
    return ResNeXt([3, 8, 36, 3], num_classes=num_classes, **kwargs)


def resnext50_32x4d(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNeXt-50 (32x4d): cardinality C = 32, bottleneck width d = 4 in the first stage
    (8, 16, 32 in the next); 25,028,904 parameters."""
    return ResNeXt([3, 4, 6, 3], cardinality=32, bottleneck_width=4, num_classes=num_classes, **kwargs)


def resnext101_32x8d(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNeXt-101 (32x8d), torchvision-compatible (not in the paper)."""
    return ResNeXt([3, 4, 23, 3], cardinality=32, bottleneck_width=8, num_classes=num_classes, **kwargs)


def resnext101_64x4d(num_classes: int = 1000, **kwargs) -> ResNeXt:
    """ResNeXt-101 (64x4d), torchvision-compatible."""
    return ResNeXt([3, 4, 23, 3], cardinality=64, bottleneck_width=4, num_classes=num_classes, **kwargs)


def resnext29(cardinality: int, bottleneck_width: int, num_classes: int = 10, **kwargs) -> ResNeXt:
    """The paper's CIFAR ResNeXt-29 (Sec. 5.3 and Appendix A): 3x3 stem with 64 channels,
    no max-pool, three stages of three blocks with outputs 256/512/1024 on maps of 32, 16
    and 8. 8x64d has 34.4M parameters (Table 7, counted without batch norm).
    x: (N, 3, 32, 32) -> (N, num_classes).
    """
    return ResNeXt([3, 3, 3], cardinality, bottleneck_width, num_classes=num_classes, stem="cifar", **kwargs)


# --------------------------------------------------------------------------------------
# The seed blog post's model, reproduced for study (chapter 7). Names and numbers are the
# post's own; do not use it as a ResNeXt: see SeedResNext's docstring.
SEED_CARDINALITY = 32  # the post's `cardinality`
SEED_DEPTH = 4  # the post's `depth`: channels per group at the base width
SEED_BASE_WIDTH = 64  # the post's `base_width`


class SeedResNextBottleNeck(nn.Module):
    """The seed post's block, as written: note the *grouped* first 1x1 (the paper's is dense).

    x: (N, in_channels, H, W) -> (N, out_channels*4, H/stride, W/stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        groups = SEED_CARDINALITY
        num_depth = int(SEED_DEPTH * out_channels / SEED_BASE_WIDTH)
        self.split_transform = nn.Sequential(
            nn.Conv2d(in_channels, groups * num_depth, kernel_size=1, groups=groups, bias=False),
            nn.BatchNorm2d(groups * num_depth),
            nn.ReLU(),
            nn.Conv2d(groups * num_depth, groups * num_depth, kernel_size=3, stride=stride,
                      groups=groups, padding=1, bias=False),
            nn.BatchNorm2d(groups * num_depth),
            nn.ReLU(),
            nn.Conv2d(groups * num_depth, out_channels * 4, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels * 4),
        )
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels * 4:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * 4, stride=stride, kernel_size=1, bias=False),
                nn.BatchNorm2d(out_channels * 4),
            )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.split_transform(x) + self.shortcut(x))


class SeedResNext(nn.Module):
    """The seed post's ResNext, reproduced exactly for study, deviations included.

    How it differs from the paper's ResNeXt (and from ``ResNeXt`` above):
    * the first 1x1 of every block is grouped (groups=32), cutting it to 1/32 of its weights and
      letting each path see only 1/32 of the block's input;
    * the stem is a 3x3 stride-1 convolution with no max-pool (a CIFAR stem) although the
      stages are ImageNet's, so a 224x224 input reaches the head at 28x28, not 7x7;
    * the head is always ``nn.Linear(2048, 100)``: the ``class_names`` argument is ignored;
    * ``seed_resnext152`` uses [3, 4, 36, 3] blocks where ResNet-152 has [3, 8, 36, 3].
    x: (N, 3, H, W) -> (N, 100).
    """

    def __init__(self, block: type[nn.Module], num_blocks: Sequence[int], class_names: int = 1000) -> None:
        super().__init__()
        self.in_channels = 64
        self.conv1 = nn.Sequential(nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.conv2 = self._make_layer(block, num_blocks[0], 64, 1)
        self.conv3 = self._make_layer(block, num_blocks[1], 128, 2)
        self.conv4 = self._make_layer(block, num_blocks[2], 256, 2)
        self.conv5 = self._make_layer(block, num_blocks[3], 512, 2)
        self.avg = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * 4, 100)  # as in the post: class_names is never used

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        x = self.avg(x)
        return self.fc(x.view(x.size(0), -1))

    def _make_layer(self, block: type[nn.Module], num_block: int, out_channels: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_block - 1):
            layers.append(block(self.in_channels, out_channels, s))
            self.in_channels = out_channels * 4
        return nn.Sequential(*layers)


def seed_resnext50(num_classes: int = 1000) -> SeedResNext:
    """The seed post's ``resnext50()``: [3, 4, 6, 3] blocks; ``num_classes`` reaches the ignored
    ``class_names`` argument, so the head has 100 outputs whatever you pass."""
    return SeedResNext(SeedResNextBottleNeck, [3, 4, 6, 3], num_classes)


def seed_resnext101(num_classes: int = 1000) -> SeedResNext:
    """The seed post's ``resnext101()``: [3, 4, 23, 3] blocks."""
    return SeedResNext(SeedResNextBottleNeck, [3, 4, 23, 3], num_classes)


def seed_resnext152(num_classes: int = 1000) -> SeedResNext:
    """The seed post's ``resnext152()``: [3, 4, 36, 3] blocks (ResNet-152 has [3, 8, 36, 3])."""
    return SeedResNext(SeedResNextBottleNeck, [3, 4, 36, 3], num_classes)


def _resnext29(cardinality: int, width: int) -> Callable[..., ResNeXt]:
    def build(num_classes: int = 10, **kwargs) -> ResNeXt:
        return resnext29(cardinality, width, num_classes=num_classes, **kwargs)

    build.__doc__ = f"ResNeXt-29 ({cardinality}x{width}d) for 32x32 images (the paper's CIFAR model)."
    return build


MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnext50_32x4d": resnext50_32x4d,
    "resnext101_32x8d": resnext101_32x8d,
    "resnext101_64x4d": resnext101_64x4d,
    "resnext29_8x64d": _resnext29(8, 64),
    "resnext29_16x64d": _resnext29(16, 64),
    "seed_resnext50": seed_resnext50,
    "seed_resnext101": seed_resnext101,
    "seed_resnext152": seed_resnext152,
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_BUILDERS)
# The builders whose state_dicts are torchvision's, so its ImageNet weights load into them.
TORCHVISION_NAMES: tuple[str, ...] = MODEL_NAMES[:6]


def unknown_name_error(kind: str, name: object, known: Sequence[str]) -> ValueError:
    """A ValueError for an unknown name that lists the known ones and the closest match."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Choose one of: {', '.join(known)}.")


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a model by name, e.g. ``get_model("resnext50_32x4d", num_classes=10)``."""
    if name not in MODEL_BUILDERS:
        raise unknown_name_error("model", name, MODEL_NAMES)
    return MODEL_BUILDERS[name](**kwargs)


class ImageNetWeights(NamedTuple):
    """What ``load_imagenet_weights`` found: the state_dict (None if it has none), where
    it came from ("cache", "download", "offline" or "failed"), and one sentence saying so."""

    state_dict: dict[str, torch.Tensor] | None
    source: str
    message: str


def load_imagenet_weights(
    name: str, weights: str = "DEFAULT", timeout: float = 5.0
) -> ImageNetWeights:
    """torchvision's ImageNet weights ``weights`` (e.g. "IMAGENET1K_V1") for model ``name``.

    Read from torch.hub's cache, ``torch.hub.get_dir()/checkpoints/<file name of the URL>``,
    when the file is there (no network); otherwise downloaded through torchvision, only if
    its server answers within ``timeout`` seconds. Never raises for a missing network or a
    bad file: the result says which branch ran. The state_dict loads strictly into
    ``get_model(name)``.
    """
    import torchvision

    if name not in TORCHVISION_NAMES:
        raise unknown_name_error("torchvision ImageNet model", name, TORCHVISION_NAMES)
    enum = torchvision.models.get_model_weights(name)
    if weights not in enum.__members__:
        raise unknown_name_error(f"weights for {name}", weights, list(enum.__members__))
    chosen = enum[weights]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(chosen.url).name
    source = "cache" if cached.exists() else "download"
    if source == "download":
        host = chosen.url.split("/")[2]
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
        except OSError as error:
            reason = error.strerror or error
            return ImageNetWeights(
                None,
                "offline",
                f"torchvision's {chosen} weights are not in torch's cache "
                f"({cached.parent}) and {host} cannot be reached from this machine "
                f"({reason}).",
            )
    try:
        state = chosen.get_state_dict(progress=False)
    except Exception as error:  # a failed or corrupt download must not stop a chapter
        message = f"Could not load torchvision's ImageNet weights {chosen}: {error!r}"
        return ImageNetWeights(None, "failed", message)
    if source == "cache":
        where = f"read from torch's cache ({cached})"
    else:
        where = f"downloaded from {chosen.url}"
    return ImageNetWeights(state, source, f"torchvision's {chosen} weights were {where}.")
