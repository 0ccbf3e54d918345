"""Training a ResNeXt: SGD with the paper's recipe, one ``fit`` loop, and a command line (chapter 7).

The paper trains its CIFAR models with SGD (momentum 0.9, weight decay 5e-4), batch 128 and a
learning rate of 0.1 divided by 10 at 50% and 75% of training (Sec. 5.3, following He et al.).
:class:`Recipe` holds those numbers; ``schedule="onecycle"`` or ``"cosine"`` suit short runs.

``fit`` runs on one CPU, one GPU, or one process of a ``torchrun`` job (DistributedDataParallel):
it checks ``torch.distributed`` and, when a process group is up, averages gradients and metrics
across processes, while only rank 0 shows progress and writes files.

Command line (``python -m resnext_lessons.train --help``)::

    python -m resnext_lessons.train --model resnext29_8x64d --data cifar10 --epochs 300 --out runs/x
    torchrun --nproc_per_node=2 -m resnext_lessons.train --data digits --epochs 10 --out runs/d
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from . import models
from .data import DATASETS, load_data, make_loaders
from .models import ResNeXt
from .notebook import resolve_device

__all__ = [
    "Recipe",
    "PRESETS",
    "MODELS",
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

SCHEDULES = ("step", "cosine", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------- models by name
def _preset(layers: list[int], cardinality: int, width: int, doc: str) -> Callable[..., nn.Module]:
    def build(num_classes: int = 10, **kwargs: Any) -> ResNeXt:
        return ResNeXt(layers, cardinality, width, num_classes=num_classes, stem="cifar", **kwargs)

    build.__doc__ = doc
    return build


# Small pairs of matched complexity: ResNet's bottleneck (1x64d) against the paper's 32x4d,
# whose width d=4 is what complexity.width_for_cardinality(32) gives (Table 2). Depth counts
# the stem, three convolutions per block and the classifier, as "ResNeXt-29" does.
PRESETS: dict[str, Callable[..., nn.Module]] = {
    "resnet11_1x64d": _preset([1, 1, 1], 1, 64, "ResNet-11 (1x64d) for 32x32 images: one block per stage, three stages."),
    "resnext11_32x4d": _preset([1, 1, 1], 32, 4, "ResNeXt-11 (32x4d) for 32x32 images; matched to resnet11_1x64d."),
    "resnet8_1x64d": _preset([1, 1], 1, 64, "ResNet-8 (1x64d) for small images (digits, 16x16): two stages."),
    "resnext8_32x4d": _preset([1, 1], 32, 4, "ResNeXt-8 (32x4d) for small images; matched to resnet8_1x64d."),
}
# One registry: the paper's models from ``models`` and the small presets.
MODELS: dict[str, Callable[..., nn.Module]] = {**models.MODEL_BUILDERS, **PRESETS}


def build_model(name: str, num_classes: int) -> nn.Module:
    """The model called ``name`` (a key of ``MODELS``) with a ``num_classes``-way classifier."""
    if name not in MODELS:
        raise models.unknown_name_error("model", name, list(MODELS))
    return MODELS[name](num_classes=num_classes)


def default_model(data_name: str) -> str:
    """The small ResNeXt that suits a dataset: ``resnext8_32x4d`` for digits, else ``resnext11_32x4d``."""
    return "resnext8_32x4d" if data_name == "digits" else "resnext11_32x4d"


# ----------------------------------------------------------------------------- the recipe
@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule. The defaults are the paper's CIFAR recipe (Sec. 5.3).

    schedule: "step" (lr x ``gamma`` at each fraction of training in ``milestones``),
    "cosine" (cosine decay to 0) or "onecycle" (warm up, then anneal; best for short runs).
    All schedules advance every batch, so a resumed run continues exactly where it stopped.
    """

    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be positive, e.g. 0.1 for batch 128 (the paper's)")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing} must lie in [0, 1), e.g. 0.1")
        object.__setattr__(self, "milestones", tuple(self.milestones))

    def optimizer(self, model: nn.Module) -> torch.optim.SGD:
        """SGD over all of ``model``'s parameters (weight decay on all, as the paper's code does)."""
        return torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=self.momentum,
            nesterov=self.nesterov and self.momentum > 0, weight_decay=self.weight_decay,
        )

    def scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        """The schedule over ``total_steps`` batches; call its ``step()`` after every batch."""
        from torch.optim import lr_scheduler

        if self.schedule == "step":
            steps = [round(m * total_steps) for m in self.milestones]
            return lr_scheduler.MultiStepLR(optimizer, steps, self.gamma)
        if self.schedule == "cosine":
            return lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
        return lr_scheduler.OneCycleLR(optimizer, self.lr, total_steps=total_steps)


# ----------------------------------------------------------------------------- small helpers
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): the same seed gives the same run on CPU."""
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed ``fit`` gives one epoch of one process: it depends on nothing else, so a resumed
    run draws the same shuffles as an uninterrupted one (and the same augmentations, where they
    run in the main process: loaders without workers, such as the in-memory digits')."""
    return seed + 1000 * epoch + rank


def _world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a torchrun job."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over all processes (a no-op for one process)."""
    if _world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype ``fit`` gives ``torch.autocast`` for ``precision`` on ``device``; None is plain fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; choose one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if precision in ("bf16", "fp16"):
            raise ValueError(f"precision={precision!r} needs a GPU; on {device.type} use 'auto' or 'fp32'")
        return None
    if precision == "auto":
        # bf16 needs no loss scaling, but only Ampere (compute capability 8) and later run it natively.
        precision = "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x = x.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device | str | None = None, precision: str = "auto"
) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy (a fraction) of ``model`` on ``loader``.

    In a torchrun job each process evaluates its share and the sums are added, so every process
    returns the numbers for the whole test set. Returns ``{"loss", "acc", "images"}``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = autocast_dtype(precision, device)
    # Feed images in the layout the model's weights are in (fit may have made it channels_last).
    conv = next((p for p in model.parameters() if p.dim() == 4), None)
    channels_last = conv is not None and not conv.is_contiguous()
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in loader:
        x, y = _to_device(x, y, device, channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    loss_sum, correct, seen = _all_sum([loss_sum.item(), correct.item(), seen], device)
    if seen == 0:
        raise ValueError("the test loader yielded no images; check the dataset and batch size")
    return {"loss": loss_sum / seen, "acc": correct / seen, "images": int(seen)}


# ----------------------------------------------------------------------------- checkpoints
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists and dicts only) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``fit`` with ``weights_only=True`` (no code is unpickled).

    Raises ``FileNotFoundError`` if it is missing and ``ValueError`` if it is not a readable
    checkpoint of this package (truncated, corrupt, or some other file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; say so rather than torch's advice
        raise ValueError(
            f"{path} is not a readable checkpoint (not a torch.save archive: truncated or another kind of "
            f"file); delete it or train into another --out"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"{path} is not a readable checkpoint ({reason}); delete it or train into another --out"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "history" not in state:
        raise ValueError(f"{path} is not a checkpoint written by resnext_lessons.train; use another --out")
    return state


def _load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> None:
    """Load weights, turning an architecture mismatch into one readable error."""
    ours = model.state_dict()
    wrong = [k for k in state if k not in ours or ours[k].shape != state[k].shape]
    missing = [k for k in ours if k not in state]
    if wrong or missing:
        key = (wrong or missing)[0]
        theirs = tuple(state[key].shape) if key in state else "absent"
        mine = tuple(ours[key].shape) if key in ours else "absent"
        trained = f" (trained as {meta['model']!r})" if "model" in meta else ""
        raise ValueError(
            f"{path} holds another architecture{trained}: {key} is {theirs} there and {mine} here; "
            "use the same model or another --out"
        )
    model.load_state_dict(state)


def load_trained(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by ``fit`` (its ``meta`` must name it) and load its weights.

    Returns ``(model in eval mode, checkpoint)``; ``checkpoint["history"]`` is its training history.
    """
    state = load_checkpoint(path, map_location)
    meta = state.get("meta", {})
    if "model" not in meta or "num_classes" not in meta:
        raise ValueError(f"{path} does not record its model name; rebuild the model and use load_checkpoint")
    model = build_model(meta["model"], meta["num_classes"])
    _load_model_state(model, state["model"], Path(path), meta)
    return model.to(map_location).eval(), state


# ----------------------------------------------------------------------------- the loop
def fit(
    model: nn.Module,
    train: DataLoader,
    test: DataLoader,
    epochs: int,
    recipe: Recipe | None = None,
    *,
    device: torch.device | str | None = None,
    precision: str = "auto",
    channels_last: bool = True,
    compile: bool = False,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs`` with SGD per ``recipe`` and test it after every epoch.

    Returns the history: one dict per epoch with ``epoch``, ``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc`` (fractions), ``lr`` (at the epoch's first step), ``images``
    (trained on), ``images_per_s`` (training only) and ``seconds`` (training and testing).

    device: default CUDA when available. precision: "auto" is bf16 (fp16 with a gradient scaler
    where bf16 is missing) on CUDA and fp32 on CPU. channels_last: NHWC weights and images, which
    cuDNN and oneDNN (the CPU's convolutions) run faster, grouped convolutions most of all.
    out: a folder; after every epoch ``checkpoint.pt`` and ``history.json`` are written there
    atomically, so an interruption loses at most the running epoch. resume: continue from
    ``out/checkpoint.pt`` (same model, recipe and epochs) and extend its history.
    meta: what to record about the run (e.g. ``{"model": name, "num_classes": 10}``), checked on resume.
    progress: tqdm bars and one line per epoch; False is silent.
    """
    from tqdm.auto import tqdm

    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be at least 1")
    recipe = recipe or Recipe()
    meta = dict(meta or {})
    device = resolve_device(device)
    dtype = autocast_dtype(precision, device)
    rank, world = _world()
    steps_per_epoch = len(train)
    if steps_per_epoch == 0:
        raise ValueError("the training loader yields no batch: the batch is larger than the dataset; use a smaller one")

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = recipe.optimizer(model)
    scheduler = recipe.scheduler(optimizer, epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    out = Path(out) if out is not None else None
    history: list[dict[str, float]] = []
    if resume:
        if out is None:
            raise ValueError("resume=True needs out=, the folder holding checkpoint.pt")
        state = load_checkpoint(out / CHECKPOINT, device)
        _check_same_run(state, meta, recipe, epochs, out / CHECKPOINT)
        _load_model_state(model, state["model"], out / CHECKPOINT, state.get("meta", {}))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = list(state["history"])

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if compile:
        net = torch.compile(net)
    show = progress and rank == 0

    for epoch in range(len(history) + 1, epochs + 1):
        seed_everything(epoch_seed(seed, epoch, rank))
        if isinstance(train.sampler, DistributedSampler):
            train.sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        net.train()
        start = time.perf_counter()
        # Sums stay on the device: reading them every step would make the GPU wait for the CPU.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        # One iterator, given to tqdm: tqdm.auto calls iter() on an iterable twice (two loaders' workers).
        bar = tqdm(iter(train), total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not show)
        for step, (x, y) in enumerate(bar):
            x, y = _to_device(x, y, device, channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if show and step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        loss_sum, correct = loss_sum.item(), correct.item()  # waits for the GPU to finish the epoch
        train_seconds = time.perf_counter() - start
        loss_sum, correct, seen, train_seconds = _all_sum([loss_sum, correct, seen, train_seconds], device)
        train_seconds /= world  # the processes ran side by side: their mean is the wall time
        tested = evaluate(net, test, device, precision)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "test_loss": tested["loss"],
            "test_acc": tested["acc"],
            "lr": lr,
            "images": int(seen),
            "images_per_s": seen / train_seconds,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if show:
            tqdm.write(
                f"epoch {epoch}/{epochs}  train loss {row['train_loss']:.4f}  test acc {row['test_acc']:.2%}  "
                f"lr {lr:.3g}  {row['images_per_s']:,.0f} img/s  {row['seconds']:.1f} s"
            )
        if out is not None and rank == 0:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "meta": meta,
                "recipe": asdict(recipe),
                "epochs": epochs,
            }
            save_checkpoint(out / CHECKPOINT, state)
            _atomic_write(out / HISTORY, lambda tmp: tmp.write_text(json.dumps(history, indent=1) + "\n"))
    return history


def _check_same_run(state: dict[str, Any], meta: dict[str, Any], recipe: Recipe, epochs: int, path: Path) -> None:
    """A resumed run must be the run that was interrupted: same model, data, recipe and length."""
    saved = state.get("meta", {})
    for key in sorted(set(saved) & set(meta)):
        if saved[key] != meta[key]:
            raise ValueError(f"{path} was trained with {key}={saved[key]!r}, not {meta[key]!r}; "
                             "resume with the same arguments or train into another --out")
    if state.get("epochs") != epochs:
        raise ValueError(f"{path} is a run of epochs={state.get('epochs')}, not {epochs}; "
                         "resume with the same --epochs (the schedule depends on it)")
    saved_recipe = Recipe(**{f.name: state["recipe"][f.name] for f in fields(Recipe) if f.name in state.get("recipe", {})})
    if saved_recipe != recipe:
        raise ValueError(f"{path} was trained with {saved_recipe}, not {recipe}; resume with the same recipe")


# ----------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resnext_lessons.train",
        description="Train a ResNet/ResNeXt on CIFAR or the offline digits. Runs unchanged under "
        "`torchrun --nproc_per_node=N` (DistributedDataParallel; --batch-size is the total over processes).",
    )
    p.add_argument("--model", help="a name from --list-models (default: a small ResNeXt suited to --data)")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")
    p.add_argument("--data", default="cifar10", help=f"one of {', '.join(DATASETS)} (default cifar10)")
    p.add_argument("--root", default="data", help="folder holding (or receiving) CIFAR (default ./data)")
    p.add_argument("--no-download", action="store_true", help="only read CIFAR from --root")
    p.add_argument("--image-size", type=int, default=None, help="digits only: side the 8x8 scans are resized to (default 16)")
    p.add_argument("--epochs", type=int, default=300, help="default 300, the paper's")
    p.add_argument("--batch-size", type=int, default=128, help="total over all processes (default 128)")
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1, the paper's for batch 128)")
    p.add_argument("--momentum", type=float, default=0.9, help="default 0.9")
    p.add_argument("--no-nesterov", action="store_true", help="plain momentum instead of Nesterov's")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="default 5e-4, the paper's")
    p.add_argument("--schedule", default="step", help=f"one of {', '.join(SCHEDULES)} (default step: x0.1 at 50%% and 75%%)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="e.g. 0.1 (default 0: none, as the paper)")
    p.add_argument("--precision", default="auto", help=f"one of {', '.join(PRECISIONS)}")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--workers", type=int, default=None, help="data-loader processes (default: by device)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same run (on the CPU, to the bit)")
    p.add_argument("--out", default=None, help="folder for history.json and checkpoint.pt (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    return p


def _cpu_threads(local_world: int) -> None:
    """Share the cores among the processes on this machine unless OMP_NUM_THREADS says otherwise."""
    if "OMP_NUM_THREADS" in os.environ:
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
    if args.image_size is not None and args.data != "digits":
        raise ValueError(f"--image-size resizes the digits only; {args.data} images are 32x32, drop it")
    name = args.model or default_model(args.data)
    if name not in MODELS:
        raise models.unknown_name_error("model", name, list(MODELS))
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
        _cpu_threads(local_world)

    data = load_data(args.data, args.root, download=not args.no_download, digits_size=args.image_size or 16)
    train, test = make_loaders(data, args.batch_size // world, device, workers=args.workers,
                               rank=rank, world_size=world, seed=args.seed)
    seed_everything(args.seed)  # the same initial weights in every process and every run
    model = build_model(name, data.num_classes)
    if rank == 0 and not args.quiet:
        print(f"{name} on {data.note}; {world} process(es) on {device}; output in {out}", flush=True)
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
