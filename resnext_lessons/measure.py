"""Measurement primitives for chapter 10: a fair timer and the roofline's arithmetic.

* Timing: ``time_interleaved`` (warm-up, repeats, alternating rounds; CUDA events on a GPU,
  ``time.perf_counter`` on a CPU) and ``bootstrap_interval`` (how far a median of paired
  rounds could move).
* Precision on a GPU: ``gpu_flags`` sets TF32 and ``cudnn.benchmark`` for one block of code,
  so every timing states its policy (``FP32_POLICIES``; in Korean ``FP32_POLICIES_KO``).
* The roofline: ``measure_peak`` (the device's two ceilings), ``conv_bytes`` and
  ``conv_intensity`` (a convolution's bytes and FLOP per byte), ``ridge_point`` and
  ``attainable_flops_per_s``; ``SPEC_SHEET_GPUS`` holds published GPU ceilings for comparison.

Nothing here imports the suite (``bench``) or the figures (``viz``): they import this.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .complexity import conv_macs, conv_output_size, conv_params

__all__ = [
    "DTYPES",
    "BYTES_MODEL",
    "FP32_POLICIES",
    "FP32_POLICIES_KO",
    "SPEC_SHEET_GPUS",
    "time_interleaved",
    "bootstrap_interval",
    "gpu_flags",
    "native_stderr_silenced",
    "measure_peak",
    "conv_bytes",
    "conv_intensity",
    "ridge_point",
    "attainable_flops_per_s",
    "time_exponent",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BYTES_MODEL = (
    "each tensor crosses memory once: read the input and the weights, write the output "
    "(elements x bytes per element); a lower bound on real traffic"
)
# The three things "fp32" can mean on an NVIDIA GPU since Ampere, named by the flags that
# decide them. On a CPU none of these flags changes anything.
FP32_POLICIES = {
    "strict": "strict fp32: TF32 off for cuDNN convolutions and for matmuls "
    "(torch.backends.cudnn.allow_tf32 = False, torch.backends.cuda.matmul.allow_tf32 = False)",
    "tf32": "fp32 tensors, TF32 allowed for cuDNN convolutions and for matmuls "
    "(torch.backends.cudnn.allow_tf32 = True, torch.backends.cuda.matmul.allow_tf32 = True)",
    "defaults": "PyTorch's defaults: TF32 allowed for cuDNN convolutions, not for matmuls "
    "(cudnn.allow_tf32 = True, cuda.matmul.allow_tf32 = False), cudnn.benchmark = False",
}
# The same policies for the Korean edition of the book: the same keys, flags and numbers, and
# the same "name: what it means" shape, so ``.split(":")[0]`` is the policy's name in both.
FP32_POLICIES_KO = {
    "strict": "엄격한 fp32: cuDNN 합성곱에도 matmul에도 TF32를 쓰지 않음 "
    "(torch.backends.cudnn.allow_tf32 = False, torch.backends.cuda.matmul.allow_tf32 = False)",
    "tf32": "fp32 텐서, cuDNN 합성곱과 matmul 모두 TF32 허용 "
    "(torch.backends.cudnn.allow_tf32 = True, torch.backends.cuda.matmul.allow_tf32 = True)",
    "defaults": "PyTorch 기본값: cuDNN 합성곱에는 TF32 허용, matmul에는 허용하지 않음 "
    "(cudnn.allow_tf32 = True, cuda.matmul.allow_tf32 = False), cudnn.benchmark = False",
}
# Published ceilings (vendor datasheets, not measured here). fp32: CUDA cores, no tensor
# cores. TF32: tensor cores, dense (A100: 156, printed beside 312 "with sparsity"; H100 SXM
# prints only 989 "with sparsity", halved here). Bandwidth: the 80GB A100 SXM's 2,039 GB/s
# (the 40GB has 1,555 GB/s). Bib keys in book/references.bib.
SPEC_SHEET_GPUS = {
    "A100 SXM 80GB": {
        "fp32_flops_per_s": 19.5e12,
        "tf32_flops_per_s": 156e12,
        "bandwidth_bytes_per_s": 2039e9,
        "source": "nvidia2021a100",
    },
    "H100 SXM": {
        "fp32_flops_per_s": 67e12,
        "tf32_flops_per_s": 989e12 / 2,
        "bandwidth_bytes_per_s": 3.35e12,
        "source": "nvidia2023h100",
    },
}


class PeakConfig(Protocol):
    """What ``measure_peak`` reads from a config (``bench.BenchConfig`` has all of it)."""

    sweep_dtype: str
    matmul_size: int
    copy_mib: int
    warmup: int
    repeats: int
    min_sample_s: float


# --------------------------------------------------------------------------------------
# Timing


def _time_once(fn: Callable[[], object], device: torch.device, inner: int) -> float:
    """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls."""
    if device.type == "cuda":
        # Events are timed on the GPU itself; the host only queues the work.
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
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
    """Seconds per call of each function, ``repeats`` samples each, in alternating rounds.

    Each function is called ``warmup`` times first (cuDNN's algorithm search, compilation,
    caches); the last warm-up call also sets how many calls one sample averages over, so that
    a sample lasts at least ``min_sample_s``. Round r times every function once: the order is
    rotated by r // 2 places and reversed on odd rounds, so that slow drift (clock speed,
    other processes) falls on all alike and no function always runs in the same place (first,
    or always after the same neighbour). Sample r of every function comes from round r: the
    samples are paired by round.
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
    names = list(fns)
    for r in range(repeats):
        shift = (r // 2) % len(names)
        order = names[shift:] + names[:shift]
        for name in order if r % 2 == 0 else order[::-1]:
            samples[name].append(_time_once(fns[name], device, inner[name]))
    return samples


def bootstrap_interval(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the median of ``values`` (e.g. per-round ratios).

    Draws ``resamples`` samples of len(values) with replacement, takes each one's median, and
    returns the (1 - level)/2 and (1 + level)/2 quantiles of those medians. It measures how
    much the median could move within this run's rounds; drift between runs (another process,
    a warmer machine) is not in it. Deterministic for a given ``seed``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got level={level!r}.")
    if len(values) < 2:
        raise ValueError(
            f"A bootstrap needs at least 2 values, got {len(values)}; time more rounds."
        )
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(data), size=(resamples, len(data)))
    medians = np.median(data[draws], axis=1)
    low, high = np.quantile(medians, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@contextlib.contextmanager
def gpu_flags(
    device: torch.device | str, tf32: bool = False, benchmark: bool = True
) -> Iterator[None]:
    """Set the GPU's fp32 policy for a block: TF32 on or off, ``cudnn.benchmark`` on or off.

    ``tf32=False`` is ``FP32_POLICIES["strict"]``: cuDNN convolutions and matmuls both in
    full fp32 (by default cuDNN may use TF32 while matmuls do not, so a roofline mixing them
    would put dense convolutions above the matmul "peak"). ``tf32=True`` allows TF32 in both.
    ``benchmark`` lets cuDNN time its algorithms per shape and keep the fastest. Restores the
    previous flags on exit; does nothing off the GPU.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
    cudnn.benchmark = benchmark
    cudnn.allow_tf32 = matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = before


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C++ code writes straight to file descriptor 2 to /dev/null for a block.

    ``torch.profiler``'s Kineto logs start/stop lines (and, on a CUDA build without a
    GPU, an error about the missing device) below Python, out of ``warnings``' reach.
    Python's ``sys.stderr`` is flushed first; in Jupyter it is not descriptor 2, so
    Python warnings still show.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# --------------------------------------------------------------------------------------
# The roofline


def measure_peak(config: PeakConfig, device: torch.device | str) -> dict[str, float]:
    """Peak compute and memory bandwidth on ``device``, in ``config.sweep_dtype``.

    Compute: an n x n matmul (n = ``config.matmul_size``) and the same product run as a 1x1
    convolution (n channels in and out at sqrt(n) x sqrt(n) positions); the roof is the faster
    of the two, since the matmul and convolution libraries need not reach the same speed.
    On a GPU both run in strict fp32 (``gpu_flags``, TF32 off): the roof is the CUDA cores'.
    Bandwidth: copying ``config.copy_mib`` MiB, which reads and writes each byte.
    Returns multiply-adds/s, FLOP/s (2 per multiply-add), bytes/s and the ridge point. A
    ceiling is the best the device does, and noise only slows a run, so these use the fastest
    sample rather than the median.
    """
    device = torch.device(device)
    dtype = DTYPES[config.sweep_dtype]
    n = config.matmul_size
    side = math.isqrt(n)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    x = torch.randn(1, n, side, side, device=device, dtype=dtype)
    w = torch.randn(n, n, 1, 1, device=device, dtype=dtype)
    src = torch.empty(config.copy_mib * 2**20 // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    probes = {
        "matmul": lambda: a @ b,
        "conv1x1": lambda: F.conv2d(x, w),
        "copy": lambda: dst.copy_(src),
    }
    with torch.no_grad(), gpu_flags(device, tf32=False):
        t = time_interleaved(
            probes, device, max(config.warmup, 1), config.repeats, config.min_sample_s
        )
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
        "ridge_flops_per_byte": ridge_point(2 * macs_per_s, bandwidth),
    }


def conv_bytes(
    batch: int,
    in_channels: int,
    out_channels: int,
    size: int,
    kernel_size: int,
    groups: int,
    element_bytes: int,
    stride: int = 1,
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


def conv_intensity(
    batch: int,
    in_channels: int,
    out_channels: int,
    size: int,
    kernel_size: int,
    groups: int,
    element_bytes: int,
    stride: int = 1,
) -> float:
    """Arithmetic intensity in FLOP per byte: 2 x multiply-adds / ``conv_bytes``."""
    out_size = conv_output_size(size, kernel_size, stride, padding=kernel_size // 2)
    macs = batch * conv_macs(in_channels, out_channels, kernel_size, out_size, groups)
    moved = conv_bytes(
        batch, in_channels, out_channels, size, kernel_size, groups, element_bytes, stride
    )
    return 2 * macs / moved


def ridge_point(flops_per_s: float, bandwidth_bytes_per_s: float) -> float:
    """The intensity (FLOP/byte) where the roof's slope meets its flat top: peak / bandwidth.

    A kernel that moves each byte once is memory-bound left of it, compute-bound right of it.
    """
    return flops_per_s / bandwidth_bytes_per_s


def attainable_flops_per_s(intensity: float, peak: dict[str, float]) -> float:
    """The roofline: min(peak FLOP/s, intensity x bandwidth), ``intensity`` in FLOP/byte."""
    return min(peak["flops_per_s"], intensity * peak["bandwidth_bytes_per_s"])


def time_exponent(sweep: Sequence[dict[str, object]]) -> float:
    """The exponent s in time ~ multiply-adds**s across a sweep, least squares on log-log.

    Uses the faster layout at each groups value. s = 1 would mean time falls as fast as the
    multiply-adds; a grouped convolution's s is well below 1. Fitting every point keeps one
    noisy measurement from deciding the answer.
    """
    groups = sorted({row["groups"] for row in sweep})
    macs = [next(row["macs"] for row in sweep if row["groups"] == g) for g in groups]
    best = [min(row["time_s"] for row in sweep if row["groups"] == g) for g in groups]
    return float(np.polyfit(np.log(macs), np.log(best), 1)[0])
