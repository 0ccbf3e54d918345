"""The command line of chapter 8, and the models it trains by name.

``python -m resnext_lessons.train --help`` lists every option with its default; the defaults
follow ``--data``: the paper's CIFAR recipe for CIFAR-10/100, a short one-cycle schedule for
the digits and Fashion-MNIST. The loop itself (``Recipe``, ``fit``, ``evaluate``, checkpoints)
lives in ``resnext_lessons.loop`` and is importable from here too::

    python -m resnext_lessons.train --model resnext29_8x64d --data cifar10 --out runs/x
    python -m resnext_lessons.train --data digits
    torchrun --nproc_per_node=2 -m resnext_lessons.train --data digits --epochs 10 --out runs/d
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from . import models
from .data import DATASETS, load_data, make_loaders
from .loop import (
    CHECKPOINT,
    HISTORY,
    PRECISIONS,
    SCHEDULES,
    Recipe,
    _world,
    autocast_dtype,
    epoch_seed,
    evaluate,
    fit,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    seed_everything,
)
from .models import ResNeXt
from .notebook import resolve_device

__all__ = [
    "Recipe",
    "PRESETS",
    "MODELS",
    "DATA_DEFAULTS",
    "build_model",
    "default_model",
    "seed_everything",
    "epoch_seed",
    "autocast_dtype",
    "fit",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "load_trained",
    "main",
]


# ----------------------------------------------------------------------------- models by name
def _preset(layers: list[int], cardinality: int, width: int, doc: str) -> Callable[..., nn.Module]:
    def build(num_classes: int = 10, **kwargs: Any) -> ResNeXt:
        return ResNeXt(layers, cardinality, width, num_classes=num_classes, stem="cifar", **kwargs)

    build.__doc__ = doc
    return build


# Small pairs: ResNet's bottleneck (1x64d) against the paper's 32x4d, whose width d=4 is what
# complexity.width_for_cardinality(32) gives (Table 2). With one block per stage every block is
# a first block, which that rule does not cover: these pairs differ by about 9% in parameters.
# The 14-layer pair below is matched within 2%. Depth counts the stem, three convolutions per
# block and the classifier, as "ResNeXt-29" does.
PRESETS: dict[str, Callable[..., nn.Module]] = {
    "resnet11_1x64d": _preset([1, 1, 1], 1, 64, "ResNet-11 (1x64d) for 32x32 images: one block per stage, three stages."),
    "resnext11_32x4d": _preset([1, 1, 1], 32, 4, "ResNeXt-11 (32x4d) for 32x32 images; matched to resnet11_1x64d."),
    "resnet8_1x64d": _preset([1, 1], 1, 64, "ResNet-8 (1x64d) for small images (digits, 16x16): two stages."),
    "resnext8_32x4d": _preset([1, 1], 32, 4, "ResNeXt-8 (32x4d) for small images; matched to resnet8_1x64d."),
    # The pair of chapter 8's experiments (``experiments.PRESETS``): two blocks per stage, two
    # stages, matched within 2% in parameters and multiply-adds by ``experiments.match_pair``.
    "resnet14_1x24d": _preset([2, 2], 1, 24, "ResNet-14 (1x24d) for small images (Fashion-MNIST): two stages of two blocks."),
    "resnext14_8x4d": _preset([2, 2], 8, 4, "ResNeXt-14 (8x4d) for small images; matched to resnet14_1x24d."),
}
# One registry: the paper's models from ``models`` and the small presets.
MODELS: dict[str, Callable[..., nn.Module]] = {**models.MODEL_BUILDERS, **PRESETS}


def build_model(name: str, num_classes: int) -> nn.Module:
    """The model called ``name`` (a key of ``MODELS``) with a ``num_classes``-way classifier."""
    if name not in MODELS:
        raise models.unknown_name_error("model", name, list(MODELS))
    return MODELS[name](num_classes=num_classes)


def default_model(data_name: str) -> str:
    """The small ResNeXt that suits a dataset: ``resnext8_32x4d`` for digits, ``resnext14_8x4d``
    for Fashion-MNIST, ``resnext11_32x4d`` for CIFAR."""
    return {"digits": "resnext8_32x4d", "fashion-mnist": "resnext14_8x4d"}.get(data_name, "resnext11_32x4d")


# The command line's defaults, by dataset: the paper's CIFAR recipe (Appendix A: 300 epochs,
# batch 128, lr 0.1 divided by 10 at 50% and 75%), and short one-cycle runs for the small
# datasets (``benchmarks/train_bench.py`` times the digits default to 97% test accuracy).
_PAPER = {"epochs": 300, "batch_size": 128, "lr": 0.1, "schedule": "step", "image_size": 32}
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "cifar10": _PAPER,
    "cifar100": _PAPER,
    "digits": {"epochs": 6, "batch_size": 64, "lr": 0.1, "schedule": "onecycle", "image_size": 16},
    "fashion-mnist": {"epochs": 5, "batch_size": 128, "lr": 0.1, "schedule": "onecycle", "image_size": 28},
}


def _by_data(key: str) -> str:
    """``"cifar10 300, cifar100 300, digits 10, fashion-mnist 5"`` for --help."""
    return ", ".join(f"{name} {DATA_DEFAULTS[name][key]}" for name in DATASETS)


def load_trained(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by ``fit`` (its ``meta`` must name it) and load its weights.

    Returns ``(model in eval mode, checkpoint)``; ``checkpoint["history"]`` is its training history.
    """
    state = load_checkpoint(path, map_location)
    meta = state.get("meta", {})
    if "model" not in meta or "num_classes" not in meta:
        raise ValueError(f"{path} does not record its model name; rebuild the model and use load_checkpoint")
    model = build_model(meta["model"], meta["num_classes"])
    load_model_state(model, state["model"], Path(path), meta)
    return model.to(map_location).eval(), state


# ----------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resnext_lessons.train",
        description="Train a ResNet/ResNeXt on CIFAR, Fashion-MNIST or the offline digits. Runs unchanged under "
        "`torchrun --nproc_per_node=N` (DistributedDataParallel; --batch-size is the total over processes).",
    )
    p.add_argument("--model", help="a name from --list-models (default: a small ResNeXt suited to --data)")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")
    p.add_argument("--data", default="cifar10", help=f"one of {', '.join(DATASETS)} (default cifar10); "
                   "the defaults marked 'by --data' follow it")
    p.add_argument("--root", default="data", help="folder holding (or receiving) CIFAR and Fashion-MNIST (default ./data)")
    p.add_argument("--no-download", action="store_true", help="only read the dataset from --root (and, for "
                   "Fashion-MNIST, the Debian package's folder)")
    p.add_argument("--image-size", type=int, default=None, help="digits and fashion-mnist: side the images are "
                   "resized to (default by --data: digits 16, fashion-mnist 28; CIFAR is always 32)")
    p.add_argument("--epochs", type=int, default=None, help=f"default by --data: {_by_data('epochs')} "
                   "(300: the paper's)")
    p.add_argument("--batch-size", type=int, default=None, help="total over all processes "
                   f"(default by --data: {_by_data('batch_size')})")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default by --data: {_by_data('lr')}; "
                   "0.1 is the paper's for batch 128)")
    p.add_argument("--momentum", type=float, default=0.9, help="default 0.9")
    p.add_argument("--no-nesterov", action="store_true", help="plain momentum instead of Nesterov's")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="default 5e-4, the paper's")
    p.add_argument("--schedule", default=None, help=f"one of {', '.join(SCHEDULES)} (default by --data: "
                   f"{_by_data('schedule')}; step is x0.1 at 50%% and 75%%, the paper's)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="e.g. 0.1 (default 0: none, as the paper)")
    p.add_argument("--precision", default="auto", help=f"one of {', '.join(PRECISIONS)} (default auto: "
                   "bf16 or fp16 on a GPU, fp32 on a CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--workers", type=int, default=None, help="data-loader processes (default: by device)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: OMP_NUM_THREADS "
                   "if set, else 1 for digits and fashion-mnist, else the cores shared among the processes)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same run (on the CPU, to the bit)")
    p.add_argument("--out", default=None, help="folder for history.json and checkpoint.pt (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    return p


def _cpu_threads(local_world: int, data_name: str, threads: int | None) -> None:
    """CPU threads per process: ``threads`` if given; else OMP_NUM_THREADS if set; else one for
    the small datasets (their small networks gain little from more threads and lose a lot when
    other programs share the cores: on 2 busy cores the default digits run took 26 s to 97% with
    one thread and 196 s with two) and the cores shared among the processes for CIFAR."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads} must be at least 1")
        torch.set_num_threads(threads)
        return
    if "OMP_NUM_THREADS" in os.environ:
        return
    if data_name in ("digits", "fashion-mnist"):
        torch.set_num_threads(1)
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, cpus // local_world))


def _run(args: argparse.Namespace) -> int:
    if args.list_models:
        for name in MODELS:
            print(name)
        return 0
    if args.data not in DATASETS:
        raise ValueError(f"unknown dataset {args.data!r}; choose one of {', '.join(DATASETS)}")
    if args.image_size is not None and args.data.startswith("cifar"):
        raise ValueError(f"--image-size resizes the digits and Fashion-MNIST only; {args.data} images are 32x32, drop it")
    name = args.model or default_model(args.data)
    if name not in MODELS:
        raise models.unknown_name_error("model", name, list(MODELS))
    defaults = DATA_DEFAULTS[args.data]
    for key in ("epochs", "batch_size", "lr", "schedule", "image_size"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    recipe = Recipe(args.lr, args.momentum, not args.no_nesterov, args.weight_decay, args.schedule,
                    label_smoothing=args.label_smoothing)
    out = Path(args.out or f"runs/{name}-{args.data}")
    if not args.resume and (out / CHECKPOINT).exists():
        raise ValueError(f"{out / CHECKPOINT} exists; pass --resume to continue it or choose another --out")
    if args.resume and not (out / CHECKPOINT).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {out / CHECKPOINT}; drop --resume to start a new run")

    rank, world = _world()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if args.batch_size % world:
        raise ValueError(f"--batch-size {args.batch_size} is not divisible by the {world} processes; "
                         f"use a multiple of {world}")
    device = resolve_device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        _cpu_threads(local_world, args.data, args.threads)

    data = load_data(args.data, args.root, download=not args.no_download,
                     image_size=None if args.data.startswith("cifar") else args.image_size)
    train, test = make_loaders(data, args.batch_size // world, device, workers=args.workers,
                               rank=rank, world_size=world, seed=args.seed)
    seed_everything(args.seed)  # the same initial weights in every process and every run
    model = build_model(name, data.num_classes)
    if rank == 0 and not args.quiet:
        print(f"{name} on {data.note}; {world} process(es) on {device}; output in {out}", flush=True)
        print(f"{args.epochs} epochs, batch {args.batch_size}, {recipe.schedule} schedule at lr {recipe.lr}", flush=True)
    meta = {"model": name, "data": data.name, "num_classes": data.num_classes, "image_size": data.image_size}
    history = fit(model, train, test, args.epochs, recipe, device=device, precision=args.precision,
                  compile=args.compile, seed=args.seed, out=out, resume=args.resume, meta=meta,
                  progress=not args.quiet)
    if rank == 0 and not args.quiet and history:
        print(f"final test accuracy {history[-1]['test_acc']:.2%} after {len(history)} epochs; {out / HISTORY}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status. Errors a user can cause print one line."""
    args = _parser().parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        cuda = torch.cuda.is_available() and args.device != "cpu"
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as error:
        if _world()[0] == 0:
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if _world()[0] == 0:
            print("interrupted: the last finished epoch is saved; add --resume to continue", file=sys.stderr)
        return 130
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
