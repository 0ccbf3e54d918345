"""Whole networks timed (chapter 10): ResNet-50 against ResNeXt-50, ours against torchvision's.

``model_throughput`` times an inference forward and a training step of the three networks
in alternating rounds, under each ``Setting`` (precision, memory layout, ``torch.compile``),
and states how our ResNeXt-50 compares with torchvision's: the median over rounds of the
paired per-round ratio, with a percentile bootstrap interval over those rounds.
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from tqdm.auto import tqdm

from . import models
from .measure import bootstrap_interval, gpu_flags, time_interleaved

__all__ = [
    "PRECISIONS",
    "MODES",
    "MODE_NAMES_KO",
    "INTERVAL_LEVEL",
    "INTERVAL_METHOD",
    "Setting",
    "parse_setting",
    "model_throughput",
]

# fp32 is strict fp32 on a GPU (TF32 off); tf32 keeps fp32 tensors but lets cuDNN and
# matmuls use TF32 tensor cores; bf16 and fp16 run under torch.autocast.
PRECISIONS = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
MODES = ("inference", "train")
# What each mode is called in the Korean edition of the book (추론: inference, 학습: training).
MODE_NAMES_KO = {"inference": "추론", "train": "학습"}
OURS, TORCHVISION = "ours", "torchvision"
INTERVAL_LEVEL = 0.95
INTERVAL_RESAMPLES = 2000
INTERVAL_METHOD = (
    f"percentile bootstrap ({INTERVAL_RESAMPLES} resamples of the timed rounds) of the "
    "median paired per-round ratio, torchvision's time / ours in the same round"
)


@dataclass(frozen=True)
class Setting:
    """How a model runs: ``precision``, layout (``-cl``: channels_last), ``torch.compile``.

    Named ``precision[-cl][-compile]``, e.g. ``fp32``, ``tf32``, ``bf16-cl-compile``.
    """

    name: str
    precision: str
    channels_last: bool = False
    compile: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype autocast runs convolutions and matmuls in; None for fp32 and tf32."""
        return None if self.precision in ("fp32", "tf32") else PRECISIONS[self.precision]

    @property
    def tf32(self) -> bool:
        """Whether cuDNN and matmuls may use TF32 (only the ``tf32`` precision)."""
        return self.precision == "tf32"


def parse_setting(name: str) -> Setting:
    """``"bf16-cl-compile"`` -> Setting(precision="bf16", channels_last=True, compile=True)."""
    precision, *flags = name.split("-")
    if (
        precision not in PRECISIONS
        or len(set(flags)) != len(flags)
        or not set(flags) <= {"cl", "compile"}
    ):
        raise ValueError(
            f"Unknown setting {name!r}: write precision[-cl][-compile] with precision one of "
            f"{', '.join(PRECISIONS)}, e.g. fp32, bf16-cl, bf16-cl-compile."
        )
    return Setting(name, precision, channels_last="cl" in flags, compile="compile" in flags)


class ThroughputConfig(Protocol):
    """What ``model_throughput`` reads from a config (``bench.BenchConfig`` has all of it)."""

    batch: int
    image_size: int
    settings: tuple[str, ...]
    modes: tuple[str, ...]
    warmup: int
    repeats: int
    min_sample_s: float


def _build_models(device: torch.device) -> dict[tuple[str, str], nn.Module]:
    """ResNet-50 and ResNeXt-50 (ours), and torchvision's ResNeXt-50 with the same weights."""
    reference = torchvision.models.resnext50_32x4d()
    ours = models.resnext50_32x4d()
    # Identical numbers in both, so neither meets slower arithmetic (denormals) the other avoids.
    ours.load_state_dict(reference.state_dict())
    nets = {
        ("resnet50", OURS): models.resnet50(),
        ("resnext50_32x4d", OURS): ours,
        ("resnext50_32x4d", TORCHVISION): reference,
    }
    return {key: net.to(device) for key, net in nets.items()}


def _step(
    model: nn.Module, setting: Setting, mode: str, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], object]:
    """One inference forward, or one training step (forward, loss, backward, SGD update).

    x: (N, 3, H, W) in the setting's memory format; y: (N,) class labels.
    """
    # Static shapes: ResNet-50 and ours share one forward, and a second shape seen there would
    # otherwise switch later compilations to slower shape-generic kernels.
    net = torch.compile(model, dynamic=False) if setting.compile else model
    dtype = setting.autocast_dtype

    def precision() -> contextlib.AbstractContextManager:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=dtype)

    if mode == "inference":
        model.eval()

        def infer() -> torch.Tensor:
            with torch.no_grad(), precision():
                return net(x)

        return infer

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    # fp16 gradients underflow without loss scaling; for bf16 and fp32 the scaler does nothing.
    scaler = torch.amp.GradScaler(x.device.type, enabled=setting.precision == "fp16")

    def train() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision():
            loss = F.cross_entropy(net(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    return train


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def model_throughput(
    config: ThroughputConfig,
    device: torch.device | str,
    progress: bool = False,
    benchmark: bool = True,
) -> dict[str, list[dict[str, object]]]:
    """Images/s of ResNet-50, ResNeXt-50 and torchvision's ResNeXt-50, per setting and mode.

    x: (config.batch, 3, image_size, image_size). The three models are timed in alternating
    rounds on the same input. ``ours_vs_torchvision`` (per setting and mode) is the median
    over rounds of torchvision's time / ours in the same round (our throughput over theirs),
    with ``ci_low``/``ci_high``, an ``INTERVAL_LEVEL`` interval by ``INTERVAL_METHOD``.
    On a GPU, ``fp32`` is strict fp32 (TF32 off), ``tf32`` allows TF32, and ``benchmark``
    sets ``cudnn.benchmark``. A ``compile`` setting that fails (no compiler, no Triton) is
    recorded under "skipped" instead of stopping the run.
    """
    device = torch.device(device)
    nets = _build_models(device)
    size = config.image_size
    x = torch.randn(config.batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (config.batch,), device=device)
    rows: list[dict[str, object]] = []
    ratios: list[dict[str, object]] = []
    skipped: list[dict[str, object]] = []
    runs = [(parse_setting(name), mode) for name in config.settings for mode in config.modes]
    for setting, mode in tqdm(runs, desc="models", disable=not progress):
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        for net in nets.values():
            net.to(memory_format=layout)
        x_in = x.to(memory_format=layout)
        fns = {key: _step(net, setting, mode, x_in, y) for key, net in nets.items()}
        # Compilation happens in the first calls; keep it out of the timed ones.
        warmup = max(config.warmup, 3) if setting.compile else config.warmup
        try:
            with gpu_flags(device, tf32=setting.tf32, benchmark=benchmark):
                times = time_interleaved(
                    fns, device, warmup, config.repeats, config.min_sample_s
                )
        except Exception as error:  # noqa: BLE001 - only a compile setting may fail softly
            if not setting.compile:
                raise
            skipped.append(
                {"setting": setting.name, "mode": mode, "reason": _first_line(error)}
            )
            continue
        for (arch, implementation), samples in times.items():
            median = statistics.median(samples)
            rows.append({
                "setting": setting.name, "mode": mode, "model": arch,
                "implementation": implementation, "batch": config.batch,
                "image_size": size, "time_s": median, "times_s": samples,
                "images_per_s": config.batch / median,
            })
        ours = times[("resnext50_32x4d", OURS)]
        reference = times[("resnext50_32x4d", TORCHVISION)]
        paired = [t_ref / t_ours for t_ref, t_ours in zip(reference, ours)]
        # One round gives a point but no interval.
        low, high = (
            bootstrap_interval(paired, INTERVAL_LEVEL, INTERVAL_RESAMPLES)
            if len(paired) > 1
            else (None, None)
        )
        ratios.append({
            "setting": setting.name, "mode": mode,
            "ours_vs_torchvision": statistics.median(paired),
            "ci_low": low, "ci_high": high, "per_round": paired,
        })
    return {"rows": rows, "ours_vs_torchvision": ratios, "skipped": skipped}
