"""The benchmark suite of chapter 10: why grouped convolutions are slower than their FLOPs.

Every figure here is measured on the current device with warm-up calls, several repeats and
the median (the timer and the roofline arithmetic are in ``measure``; whole networks in
``throughput``). On a GPU every convolution runs in strict fp32 unless a setting says
otherwise (``measure.FP32_POLICIES``).

* ``measure_peak``: the device's two ceilings for a roofline, a large matmul (compute) and a
  large copy (memory bandwidth).
* ``grouped_conv_sweep``: one 3x3 layer, by default the grouped 3x3 of ResNeXt-50's conv3 stage,
  with groups from 1 (dense) to depthwise: time, achieved multiply-adds per second, bytes moved
  and arithmetic intensity, in NCHW and channels_last.
* ``model_throughput``: images/s of ResNet-50 and ResNeXt-50 (32x4d) for inference and for a
  training step under each setting (precision, memory format, ``torch.compile``), with
  torchvision's ResNeXt-50 timed in the same rounds so ours can be compared with it, with a
  bootstrap interval.

``run_benchmarks`` does all three; ``python -m resnext_lessons.bench --help`` runs it from a
terminal, prints tables and can write the figures as JSON and the roofline as an image.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torchvision
from torch import nn
from tqdm.auto import tqdm

from .blocks import group_conv_width
from .complexity import conv_macs
from .grouped import check_groups
from .measure import (
    BYTES_MODEL,
    DTYPES,
    FP32_POLICIES,
    FP32_POLICIES_KO,
    SPEC_SHEET_GPUS,
    attainable_flops_per_s,
    bootstrap_interval,
    conv_bytes,
    conv_intensity,
    gpu_flags,
    measure_peak,
    native_stderr_silenced,
    ridge_point,
    time_exponent,
    time_interleaved,
)
from .models import unknown_name_error
from .notebook import device_name, resolve_device
from .throughput import (
    INTERVAL_LEVEL,
    INTERVAL_METHOD,
    MODE_NAMES_KO,
    MODES,
    PRECISIONS,
    Setting,
    model_throughput,
    parse_setting,
)
from .train import autocast_dtype

__all__ = [
    "BenchConfig",
    "Setting",
    "parse_setting",
    "default_groups",
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
    "grouped_conv_sweep",
    "model_throughput",
    "run_benchmarks",
    "format_report",
    "main",
    "BYTES_MODEL",
    "DTYPES",
    "FP32_POLICIES",
    "FP32_POLICIES_KO",
    "SPEC_SHEET_GPUS",
    "INTERVAL_LEVEL",
    "INTERVAL_METHOD",
    "MODES",
    "MODE_NAMES_KO",
    "PRECISIONS",
]

# ResNeXt-50 (32x4d)'s conv3 stage: planes 128, so its grouped 3x3 has 256 channels at 28x28.
CONV3_CHANNELS = group_conv_width(planes=128, cardinality=32, bottleneck_width=4)
CONV3_SIZE = 28
PARTS = ("sweep", "models")


# --------------------------------------------------------------------------------------
# Sizes


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
# 1. The grouped-convolution sweep


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
        with torch.no_grad(), gpu_flags(device, tf32=False):
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
# Everything together


def run_benchmarks(
    config: BenchConfig,
    device: torch.device | str,
    parts: Sequence[str] = ("sweep", "models"),
    progress: bool = False,
) -> dict[str, object]:
    """Run the chosen ``parts`` ("sweep": peak + grouped sweep; "models": throughput).

    Returns a JSON-ready dict: device, torch version, the fp32 policy, the config, every
    measured figure, and ``ours_vs_torchvision``: our ResNeXt-50's throughput over
    torchvision's, the lowest over the settings and modes measured (None when the models were
    not run), with ``ours_vs_torchvision_interval``: that setting's bootstrap interval, its
    level and method.
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
        "fp32_policy": (
            FP32_POLICIES["strict"] + ", cudnn.benchmark on; a tf32 setting allows TF32"
            if device.type == "cuda"
            else "fp32 on a CPU: the GPU's TF32 flags do not apply"
        ),
        "bytes_model": BYTES_MODEL,
        "config": asdict(config),
        "peak": None,
        "sweep": [],
        "sweep_time_exponent": None,
        "throughput": [],
        "ours_vs_torchvision_by_setting": [],
        "ours_vs_torchvision": None,
        "ours_vs_torchvision_interval": None,
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
            lowest = min(measured["ours_vs_torchvision"], key=lambda r: r["ours_vs_torchvision"])
            result["ours_vs_torchvision"] = lowest["ours_vs_torchvision"]
            result["ours_vs_torchvision_interval"] = {
                "setting": lowest["setting"],
                "mode": lowest["mode"],
                "low": lowest["ci_low"],
                "high": lowest["ci_high"],
                "level": INTERVAL_LEVEL,
                "method": INTERVAL_METHOD,
                "rounds": len(lowest["per_round"]),
            }
    return result


def format_report(result: dict[str, object]) -> str:
    """The figures of ``run_benchmarks`` as plain-text tables for a terminal."""
    lines = [
        f"{result['device_name']} ({result['device']}), torch {result['torch_version']}; {result['timing']}.",
        f"Precision: {result['fp32_policy']}.",
    ]
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
        level = f"{INTERVAL_LEVEL:.0%}"
        lines += ["", f"Our ResNeXt-50's throughput / torchvision's, same rounds ({level} interval: {INTERVAL_METHOD}):"]
        for r in result["ours_vs_torchvision_by_setting"]:
            interval = "" if r["ci_low"] is None else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            lines.append(f"  {r['setting']} {r['mode']}: {r['ours_vs_torchvision']:.3f}{interval}")
        lines.append(f"  lowest: {result['ours_vs_torchvision']:.3f}")
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
        help="precision[-cl][-compile], precision in fp32/tf32/bf16/fp16 (fp32 is strict: TF32 off), e.g. fp32 tf32 bf16-cl bf16-cl-compile "
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
