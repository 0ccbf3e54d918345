"""Measuring speed (chapter 9): why grouped convolutions are slower than their FLOPs.

Every figure here is measured on the current device with warm-up calls, several repeats and
the median; a GPU is timed with CUDA events and synchronised, a CPU with ``time.perf_counter``.

* ``measure_peak``: the device's two ceilings for a roofline, a large matmul (compute) and a
  large copy (memory bandwidth).
* ``grouped_conv_sweep``: one 3x3 layer, by default the grouped 3x3 of ResNeXt-50's conv3 stage,
  with groups from 1 (dense) to depthwise: time, achieved multiply-adds per second, bytes moved
  and arithmetic intensity, in NCHW and channels_last.
* ``model_throughput``: images/s of ResNet-50 and ResNeXt-50 (32x4d) for inference and for a
  training step under each setting (precision, memory format, ``torch.compile``), with
  torchvision's ResNeXt-50 timed in the same rounds so ours can be compared with it.

``run_benchmarks`` does all three; ``python -m resnext_lessons.bench --help`` runs it from a
terminal, prints tables and can write the figures as JSON and the roofline as an image.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from tqdm.auto import tqdm

from . import models
from .blocks import group_conv_width
from .complexity import conv_macs, conv_output_size, conv_params
from .grouped import check_groups
from .models import unknown_name_error
from .notebook import device_name, resolve_device
from .train import autocast_dtype

__all__ = [
    "BenchConfig",
    "Setting",
    "parse_setting",
    "default_groups",
    "time_interleaved",
    "measure_peak",
    "conv_bytes",
    "attainable_flops_per_s",
    "time_exponent",
    "grouped_conv_sweep",
    "model_throughput",
    "run_benchmarks",
    "format_report",
    "main",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("inference", "train")
BYTES_MODEL = (
    "each tensor crosses memory once: read the input and the weights, write the output "
    "(elements x bytes per element); a lower bound on real traffic"
)
# ResNeXt-50 (32x4d)'s conv3 stage: planes 128, so its grouped 3x3 has 256 channels at 28x28.
CONV3_CHANNELS = group_conv_width(planes=128, cardinality=32, bottleneck_width=4)
CONV3_SIZE = 28
OURS, TORCHVISION = "ours", "torchvision"
PARTS = ("sweep", "models")


# --------------------------------------------------------------------------------------
# Settings and sizes


@dataclass(frozen=True)
class Setting:
    """How a model runs: ``precision`` (fp32, or bf16/fp16 autocast), layout, ``torch.compile``.

    Named ``precision[-cl][-compile]``, e.g. ``fp32``, ``bf16-cl``, ``bf16-cl-compile``.
    """

    name: str
    precision: str
    channels_last: bool = False
    compile: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype autocast runs convolutions and matmuls in; None for plain fp32."""
        return None if self.precision == "fp32" else PRECISIONS[self.precision]


def parse_setting(name: str) -> Setting:
    """``"bf16-cl-compile"`` -> Setting(precision="bf16", channels_last=True, compile=True)."""
    precision, *flags = name.split("-")
    if precision not in PRECISIONS or len(set(flags)) != len(flags) or not set(flags) <= {"cl", "compile"}:
        raise ValueError(
            f"Unknown setting {name!r}: write precision[-cl][-compile] with precision one of "
            f"{', '.join(PRECISIONS)}, e.g. fp32, bf16-cl, bf16-cl-compile."
        )
    return Setting(name, precision, channels_last="cl" in flags, compile="compile" in flags)


def default_groups(channels: int) -> tuple[int, ...]:
    """Groups from 1 (dense) to ``channels`` (depthwise), doubling: (1, 2, 4, ..., channels)."""
    groups = [2**k for k in range(channels.bit_length()) if channels % 2**k == 0]
    return tuple(groups if groups[-1] == channels else groups + [channels])


def _mixed_precision(device: torch.device) -> str:
    """"bf16" or "fp16": the half precision ``train.fit`` uses on this GPU (one rule for both)."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype("auto", device)]


@dataclass
class BenchConfig:
    """Sizes and repeats of one run. ``BenchConfig.for_device`` picks quick CPU or full GPU sizes.

    Sweep: a 3x3 convolution with ``channels`` in and out on ``(sweep_batch, channels, size,
    size)`` inputs in ``sweep_dtype``, once per entry of ``groups``.
    Models: ``(batch, 3, image_size, image_size)`` images, each of ``settings`` and ``modes``.
    Timing: ``warmup`` untimed calls, then ``repeats`` timed samples of at least
    ``min_sample_s`` seconds each (short calls are repeated inside one sample).
    """

    channels: int = CONV3_CHANNELS
    size: int = CONV3_SIZE
    sweep_batch: int = 4
    groups: tuple[int, ...] = ()
    sweep_dtype: str = "float32"
    batch: int = 2
    image_size: int = 224
    settings: tuple[str, ...] = ("fp32",)
    modes: tuple[str, ...] = MODES
    warmup: int = 1
    repeats: int = 5
    min_sample_s: float = 0.02
    matmul_size: int = 2048
    copy_mib: int = 256

    def __post_init__(self) -> None:
        self.groups = tuple(self.groups) or default_groups(self.channels)
        self.settings = tuple(self.settings)
        self.modes = tuple(self.modes)
        self.validate()

    @classmethod
    def for_device(cls, device: torch.device | str, **overrides) -> "BenchConfig":
        """Quick sizes on a CPU (the default run takes well under a minute), full ones on a GPU."""
        device = torch.device(device)
        if device.type != "cuda":
            return cls(**overrides)
        total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
        amp = _mixed_precision(device)
        cuda = dict(
            sweep_batch=64,
            batch=128 if total_gib >= 40 else 32,  # three models train side by side
            settings=("fp32", amp, f"{amp}-cl", f"{amp}-cl-compile"),
            warmup=5,
            repeats=20,
            min_sample_s=0.01,
            matmul_size=8192,
            copy_mib=2048,
        )
        return cls(**{**cuda, **overrides})

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and what to change."""
        for name in ("channels", "size", "sweep_batch", "batch", "image_size", "repeats", "matmul_size", "copy_mib"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={value!r}.")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got warmup={self.warmup!r}.")
        if not self.min_sample_s >= 0:
            raise ValueError(f"min_sample_s must be >= 0 seconds, got {self.min_sample_s!r}.")
        if self.image_size < 32:
            raise ValueError(
                f"image_size={self.image_size} is too small: the ImageNet stem and four stages halve "
                "the image five times, so use at least 32."
            )
        for g in self.groups:
            check_groups(self.channels, self.channels, g)
        if self.sweep_dtype not in DTYPES:
            raise unknown_name_error("sweep dtype", self.sweep_dtype, tuple(DTYPES))
        for mode in self.modes:
            if mode not in MODES:
                raise unknown_name_error("mode", mode, MODES)
        for name in self.settings:
            parse_setting(name)


# --------------------------------------------------------------------------------------
# Timing


def _time_once(fn: Callable[[], object], device: torch.device, inner: int) -> float:
    """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls."""
    if device.type == "cuda":
        # Events are timed on the GPU itself; the host only queues the work.
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / inner
    begin = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - begin) / inner


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str,
    warmup: int = 1,
    repeats: int = 5,
    min_sample_s: float = 0.0,
) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` samples each, measured in alternating rounds.

    Each function is called ``warmup`` times first (cuDNN's algorithm search, compilation,
    caches); the last warm-up call also sets how many calls one sample averages over, so that
    a sample lasts at least ``min_sample_s``. Round r times every function once, in reverse
    order on odd rounds, so slow drift (clock speed, other processes) falls on all alike.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    inner = {}
    for name, fn in fns.items():
        seconds = min_sample_s
        for _ in range(warmup):
            seconds = _time_once(fn, device, 1)
        inner[name] = max(1, math.ceil(min_sample_s / max(seconds, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            samples[name].append(_time_once(fns[name], device, inner[name]))
    return samples


@contextlib.contextmanager
def _gpu_flags(device: torch.device, full_fp32: bool) -> Iterator[None]:
    """Let cuDNN pick its fastest algorithm per shape; with ``full_fp32``, also forbid TF32.

    cuDNN convolutions default to TF32 while matmuls do not: a roofline that mixed the two
    would put dense convolutions above the measured "peak". Does nothing off the GPU.
    """
    if device.type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
    cudnn.benchmark = True
    if full_fp32:
        cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = before


# --------------------------------------------------------------------------------------
# The roofline's ceilings


def measure_peak(config: BenchConfig, device: torch.device | str) -> dict[str, float]:
    """Peak compute and memory bandwidth on ``device``, in ``config.sweep_dtype``.

    Compute: an n x n matmul (n = ``config.matmul_size``) and the same kind of product run as a
    1x1 convolution (n channels in and out at sqrt(n) x sqrt(n) positions); the roof is the
    faster of the two, because the matmul library and the convolution library need not reach
    the same speed (on the AMD EPYC CPU the book is tested on, oneDNN's 1x1 convolution beat
    MKL's matmul by a few to 15 percent, and the sweep's dense 3x3 rose above the matmul alone).
    Bandwidth: copying ``config.copy_mib`` MiB, which reads and writes each byte.
    Returns multiply-adds/s, FLOP/s (2 per multiply-add), bytes/s and the ridge point: the
    arithmetic intensity (FLOP/byte) above which a kernel that moves each byte once could be
    compute-bound. A ceiling is the best the device does, and noise only ever slows a run, so
    these use the fastest sample rather than the median.
    """
    device = torch.device(device)
    dtype = DTYPES[config.sweep_dtype]
    n = config.matmul_size
    side = math.isqrt(n)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    x = torch.randn(1, n, side, side, device=device, dtype=dtype)
    w = torch.randn(n, n, 1, 1, device=device, dtype=dtype)
    src = torch.empty(config.copy_mib * 2**20 // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    probes = {"matmul": lambda: a @ b, "conv1x1": lambda: F.conv2d(x, w), "copy": lambda: dst.copy_(src)}
    with torch.no_grad(), _gpu_flags(device, full_fp32=True):
        t = time_interleaved(probes, device, max(config.warmup, 1), config.repeats, config.min_sample_s)
    matmul = n**3 / min(t["matmul"])
    conv = n * n * side * side / min(t["conv1x1"])
    macs_per_s = max(matmul, conv)
    bandwidth = 2 * src.nbytes / min(t["copy"])
    return {
        "matmul_size": n,
        "matmul_macs_per_s": matmul,
        "conv1x1_macs_per_s": conv,
        "macs_per_s": macs_per_s,
        "flops_per_s": 2 * macs_per_s,
        "copy_bytes": src.nbytes,
        "bandwidth_bytes_per_s": bandwidth,
        "ridge_flops_per_byte": 2 * macs_per_s / bandwidth,
    }


def time_exponent(sweep: Sequence[dict[str, object]]) -> float:
    """The exponent s in time ~ multiply-adds**s across a sweep, by least squares on log-log.

    Uses the faster layout at each groups value. s = 1 would mean time falls as fast as the
    multiply-adds; a grouped convolution's s is well below 1. Fitting every point keeps one
    noisy measurement from deciding the answer.
    """
    groups = sorted({row["groups"] for row in sweep})
    macs = [next(row["macs"] for row in sweep if row["groups"] == g) for g in groups]
    best = [min(row["time_s"] for row in sweep if row["groups"] == g) for g in groups]
    return float(np.polyfit(np.log(macs), np.log(best), 1)[0])


def attainable_flops_per_s(intensity: float, peak: dict[str, float]) -> float:
    """The roofline: min(peak FLOP/s, intensity x bandwidth) for ``intensity`` in FLOP/byte."""
    return min(peak["flops_per_s"], intensity * peak["bandwidth_bytes_per_s"])


# --------------------------------------------------------------------------------------
# 1. The grouped-convolution sweep


def conv_bytes(
    batch: int, in_channels: int, out_channels: int, size: int, kernel_size: int, groups: int,
    element_bytes: int, stride: int = 1,
) -> int:
    """Bytes a convolution must move at least (``BYTES_MODEL``): input + weights + output.

    Input (batch, C_in, size, size), weight (C_out, C_in/groups, k, k), output
    (batch, C_out, size', size') with "same" padding k // 2. Only the weights shrink with
    groups; the activations, which dominate, do not.
    """
    out_size = conv_output_size(size, kernel_size, stride, padding=kernel_size // 2)
    elements = (
        batch * in_channels * size * size
        + conv_params(in_channels, out_channels, kernel_size, groups)
        + batch * out_channels * out_size * out_size
    )
    return elements * element_bytes


def grouped_conv_sweep(
    config: BenchConfig, device: torch.device | str, progress: bool = False
) -> list[dict[str, object]]:
    """Time a ``config.channels`` -> ``config.channels`` 3x3 convolution for each of ``config.groups``.

    x: (sweep_batch, channels, size, size). One row per (groups, memory format) with
    multiply-adds (``complexity.conv_macs``), bytes (``conv_bytes``), arithmetic intensity in
    FLOP/byte, the median time, the achieved multiply-adds/s, and how many times fewer
    multiply-adds and how many times less time than the first entry (dense when ``groups``
    starts at 1) of the same layout. The two layouts of one layer are timed in alternating rounds.
    """
    device = torch.device(device)
    dtype = DTYPES[config.sweep_dtype]
    c, s, n = config.channels, config.size, config.sweep_batch
    rows = []
    for groups in tqdm(config.groups, desc="groups sweep", disable=not progress):
        nchw = nn.Conv2d(c, c, 3, padding=1, groups=groups, bias=False).to(device, dtype)
        cl = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
        x = torch.randn(n, c, s, s, device=device, dtype=dtype)
        x_cl = x.to(memory_format=torch.channels_last)
        fns = {"nchw": lambda: nchw(x), "channels_last": lambda: cl(x_cl)}
        with torch.no_grad(), _gpu_flags(device, full_fp32=True):
            times = time_interleaved(fns, device, config.warmup, config.repeats, config.min_sample_s)
        macs = n * conv_macs(c, c, 3, s, groups)
        moved = conv_bytes(n, c, c, s, 3, groups, x.element_size())
        for fmt, samples in times.items():
            median = statistics.median(samples)
            rows.append({
                "groups": groups,
                "memory_format": fmt,
                "macs": macs,
                "bytes": moved,
                "flops_per_byte": 2 * macs / moved,
                "time_s": median,
                "times_s": samples,
                "macs_per_s": macs / median,
            })
    for fmt in ("nchw", "channels_last"):
        same = [row for row in rows if row["memory_format"] == fmt]
        for row in same:
            row["mac_reduction"] = same[0]["macs"] / row["macs"]
            row["time_reduction"] = same[0]["time_s"] / row["time_s"]
    return rows


# --------------------------------------------------------------------------------------
# 2 and 3. Model throughput, ours beside torchvision's


def _build_models(device: torch.device) -> dict[tuple[str, str], nn.Module]:
    """ResNet-50 and ResNeXt-50 (ours), and torchvision's ResNeXt-50 holding the same weights."""
    reference = torchvision.models.resnext50_32x4d()
    ours = models.resnext50_32x4d()
    # Identical numbers in both, so neither meets slower arithmetic (denormals) the other avoids.
    ours.load_state_dict(reference.state_dict())
    nets = {("resnet50", OURS): models.resnet50(), ("resnext50_32x4d", OURS): ours,
            ("resnext50_32x4d", TORCHVISION): reference}
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
        return torch.autocast(x.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

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


def model_throughput(
    config: BenchConfig, device: torch.device | str, progress: bool = False
) -> dict[str, list[dict[str, object]]]:
    """Images/s of ResNet-50, ResNeXt-50 and torchvision's ResNeXt-50 for each setting and mode.

    x: (config.batch, 3, image_size, image_size). The three models are timed in alternating
    rounds on the same input, so ``ours_vs_torchvision`` (per setting and mode: the median over
    rounds of torchvision's time / ours, i.e. our throughput over theirs) compares like with like.
    "fp32" keeps PyTorch's defaults (on a GPU cuDNN may use TF32). A ``compile`` setting that
    fails (no compiler, no Triton) is recorded under "skipped" instead of stopping the run.
    """
    device = torch.device(device)
    nets = _build_models(device)
    x = torch.randn(config.batch, 3, config.image_size, config.image_size, device=device)
    y = torch.randint(0, 1000, (config.batch,), device=device)
    rows: list[dict[str, object]] = []
    ratios: list[dict[str, object]] = []
    skipped: list[dict[str, object]] = []
    runs = [(parse_setting(name), mode) for name in config.settings for mode in config.modes]
    for setting, mode in tqdm(runs, desc="models", disable=not progress):
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        for net in nets.values():
            net.to(memory_format=layout)
        fns = {key: _step(net, setting, mode, x.to(memory_format=layout), y) for key, net in nets.items()}
        # Compilation happens in the first calls; keep it out of the timed ones.
        warmup = max(config.warmup, 3) if setting.compile else config.warmup
        try:
            with _gpu_flags(device, full_fp32=False):
                times = time_interleaved(fns, device, warmup, config.repeats, config.min_sample_s)
        except Exception as error:  # noqa: BLE001 - only a compile setting may fail softly
            if not setting.compile:
                raise
            reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            skipped.append({"setting": setting.name, "mode": mode, "reason": reason})
            continue
        for (arch, implementation), samples in times.items():
            median = statistics.median(samples)
            rows.append({
                "setting": setting.name, "mode": mode, "model": arch, "implementation": implementation,
                "batch": config.batch, "image_size": config.image_size,
                "time_s": median, "times_s": samples, "images_per_s": config.batch / median,
            })
        ours = times[("resnext50_32x4d", OURS)]
        reference = times[("resnext50_32x4d", TORCHVISION)]
        paired = statistics.median(t_ref / t_ours for t_ref, t_ours in zip(reference, ours))
        ratios.append({"setting": setting.name, "mode": mode, "ours_vs_torchvision": paired})
    return {"rows": rows, "ours_vs_torchvision": ratios, "skipped": skipped}


# --------------------------------------------------------------------------------------
# Everything together


def run_benchmarks(
    config: BenchConfig,
    device: torch.device | str,
    parts: Sequence[str] = ("sweep", "models"),
    progress: bool = False,
) -> dict[str, object]:
    """Run the chosen ``parts`` ("sweep": peak + grouped sweep; "models": throughput).

    Returns a JSON-ready dict: device, torch version, the config, every measured figure, and
    ``ours_vs_torchvision``: our ResNeXt-50's throughput over torchvision's, the lowest over the
    settings and modes measured (None when the models were not run).
    """
    for part in parts:
        if part not in PARTS:
            raise unknown_name_error("part", part, PARTS)
    device = torch.device(device)
    result: dict[str, object] = {
        "device": device.type,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "timing": (
            f"median of {config.repeats} samples after {config.warmup} warm-up calls, timed with "
            + ("CUDA events" if device.type == "cuda" else "time.perf_counter")
        ),
        "bytes_model": BYTES_MODEL,
        "config": asdict(config),
        "peak": None,
        "sweep": [],
        "sweep_time_exponent": None,
        "throughput": [],
        "ours_vs_torchvision_by_setting": [],
        "ours_vs_torchvision": None,
        "skipped": [],
    }
    if "sweep" in parts:
        result["peak"] = measure_peak(config, device)
        result["sweep"] = grouped_conv_sweep(config, device, progress)
        if len(config.groups) > 1:
            result["sweep_time_exponent"] = time_exponent(result["sweep"])
    if "models" in parts:
        measured = model_throughput(config, device, progress)
        result["throughput"] = measured["rows"]
        result["ours_vs_torchvision_by_setting"] = measured["ours_vs_torchvision"]
        result["skipped"] = measured["skipped"]
        if measured["ours_vs_torchvision"]:
            result["ours_vs_torchvision"] = min(r["ours_vs_torchvision"] for r in measured["ours_vs_torchvision"])
    return result


def format_report(result: dict[str, object]) -> str:
    """The figures of ``run_benchmarks`` as plain-text tables for a terminal."""
    lines = [f"{result['device_name']} ({result['device']}), torch {result['torch_version']}; {result['timing']}."]
    config, peak = result["config"], result["peak"]
    if peak:
        lines += [
            "",
            f"Peak compute {peak['macs_per_s'] / 1e9:,.1f} GMAC/s (the faster of a {peak['matmul_size']}^2 matmul, "
            f"{peak['matmul_macs_per_s'] / 1e9:,.1f}, and a 1x1 convolution, {peak['conv1x1_macs_per_s'] / 1e9:,.1f}), "
            f"bandwidth {peak['bandwidth_bytes_per_s'] / 1e9:,.1f} GB/s (copy of {peak['copy_bytes'] / 2**20:,.0f} MiB), "
            f"ridge point {peak['ridge_flops_per_byte']:.1f} FLOP/byte.",
        ]
    if result["sweep"]:
        lines += [
            "",
            f"3x3 convolution, {config['channels']} -> {config['channels']} channels, {config['size']}x{config['size']}, "
            f"batch {config['sweep_batch']}, {config['sweep_dtype']}. Bytes: {result['bytes_model']}.",
            f"{'groups':>6}  {'layout':<13} {'MMAC':>9} {'MB':>7} {'FLOP/B':>7} {'ms':>8} {'GMAC/s':>8}"
            f" {'MACs fall':>9} {'time falls':>10}",
        ]
        for r in result["sweep"]:
            lines.append(
                f"{r['groups']:>6}  {r['memory_format']:<13} {r['macs'] / 1e6:>9,.1f} {r['bytes'] / 1e6:>7.2f}"
                f" {r['flops_per_byte']:>7.1f} {r['time_s'] * 1e3:>8.3f} {r['macs_per_s'] / 1e9:>8.1f}"
                f" {r['mac_reduction']:>8.1f}x {r['time_reduction']:>9.1f}x"
            )
        if result["sweep_time_exponent"] is not None:
            s = result["sweep_time_exponent"]
            lines.append(
                f"Time ~ multiply-adds^{s:.2f} (faster layout, least squares): cutting the multiply-adds "
                f"10x cut the time {10**s:.1f}x."
            )
    if result["throughput"]:
        lines += [
            "",
            f"Throughput, batch {config['batch']} of {config['image_size']}x{config['image_size']} images.",
            f"{'setting':<18} {'mode':<10} {'model':<30} {'images/s':>9} {'ms/step':>9}",
        ]
        for r in result["throughput"]:
            model = f"{r['model']} ({r['implementation']})"
            lines.append(
                f"{r['setting']:<18} {r['mode']:<10} {model:<30} {r['images_per_s']:>9.1f} {r['time_s'] * 1e3:>9.1f}"
            )
        by_setting = ", ".join(
            f"{r['setting']} {r['mode']} {r['ours_vs_torchvision']:.3f}" for r in result["ours_vs_torchvision_by_setting"]
        )
        lines += ["", f"Our ResNeXt-50 / torchvision's, same run: {by_setting}; lowest {result['ours_vs_torchvision']:.3f}."]
    for s in result["skipped"]:
        lines.append(f"Skipped {s['setting']} {s['mode']}: {s['reason']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m resnext_lessons.bench",
        description="Measure why grouped convolutions are slower than their FLOPs, on this machine: "
        "a groups sweep of one 3x3 layer, ResNet-50 vs ResNeXt-50 throughput, and our ResNeXt-50 "
        "against torchvision's. Defaults are quick on a CPU and full-size on a GPU.",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda when available")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (default: both)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write every figure to this JSON file")
    p.add_argument("--plot", type=Path, metavar="PATH", help="save the roofline plot (needs the sweep), e.g. roofline.png")
    sweep = p.add_argument_group("grouped-convolution sweep")
    sweep.add_argument("--channels", type=int, help=f"channels in and out (default {CONV3_CHANNELS}: ResNeXt-50's conv3 3x3)")
    sweep.add_argument("--size", type=int, help=f"feature-map height and width (default {CONV3_SIZE})")
    sweep.add_argument("--sweep-batch", type=int, help="batch for the sweep (default: 4 on CPU, 64 on GPU)")
    sweep.add_argument("--groups", type=int, nargs="+", help="groups to try (default: 1, 2, 4, ... up to depthwise)")
    sweep.add_argument("--sweep-dtype", choices=tuple(DTYPES), help="dtype of the sweep and of the peak (default float32)")
    net = p.add_argument_group("model throughput")
    net.add_argument("--batch", type=int, help="images per step (default: 2 on CPU, 32 or 128 on GPU)")
    net.add_argument("--image-size", type=int, help="image height and width (default 224)")
    net.add_argument(
        "--settings", nargs="+", metavar="SETTING",
        help="precision[-cl][-compile], precision in fp32/bf16/fp16, e.g. fp32 bf16-cl bf16-cl-compile "
        "(default: fp32 on CPU; fp32 and three mixed-precision steps on GPU)",
    )
    net.add_argument("--modes", nargs="+", choices=MODES, help="inference and/or train (default both)")
    timing = p.add_argument_group("timing")
    timing.add_argument("--warmup", type=int, help="untimed calls first (default: 1 on CPU, 5 on GPU)")
    timing.add_argument("--repeats", type=int, help="timed samples; the median is reported (default: 5 on CPU, 20 on GPU)")
    timing.add_argument("--min-sample-s", type=float, help="shortest sample; fast calls repeat inside one (default 0.02 s CPU)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: parse, run, print the tables, write ``--json`` and ``--plot``."""
    parser = _parser()
    args = parser.parse_args(argv)
    overrides = {
        key: value for key, value in vars(args).items()
        if key not in ("device", "parts", "json", "plot") and value is not None
    }
    for path in (args.json, args.plot):
        if path is not None and not path.parent.is_dir():
            parser.error(f"the folder of {path} does not exist; create {path.parent} or choose another path")
    if args.plot is not None and "sweep" not in args.parts:
        parser.error("--plot draws the sweep's roofline; add sweep to --parts")
    try:
        device = resolve_device(args.device)
        config = BenchConfig.for_device(device, **overrides)
    except ValueError as error:
        parser.error(str(error))
    result = run_benchmarks(config, device, args.parts, progress=True)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {args.json}")
    if args.plot is not None:
        from .viz import plot_roofline  # matplotlib only when a plot is asked for

        figure = plot_roofline(result["peak"], result["sweep"], config, result["device_name"])
        figure.savefig(args.plot, dpi=150, bbox_inches="tight")
        print(f"Wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
