"""The training loop of chapter 8: the recipe, ``fit``, ``evaluate`` and checkpoints.

The paper trains its CIFAR models with SGD (momentum 0.9, weight decay 5e-4), batch 128 and a
learning rate of 0.1 divided by 10 at 150 and 225 of 300 epochs (the paper's Appendix A, for
Sec. 5.3, following He et al.). :class:`Recipe` holds those numbers; ``schedule="onecycle"``
or ``"cosine"`` suit short runs.

``fit`` runs on one CPU, one GPU, or one process of a ``torchrun`` job (DistributedDataParallel):
it checks ``torch.distributed`` and, when a process group is up, averages gradients and metrics
across processes, while only rank 0 shows progress and writes files. The command line that
drives it is ``resnext_lessons.train``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
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

from .notebook import resolve_device

__all__ = [
    "Recipe",
    "SCHEDULES",
    "PRECISIONS",
    "CHECKPOINT",
    "HISTORY",
    "seed_everything",
    "epoch_seed",
    "autocast_dtype",
    "fit",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_state",
]

SCHEDULES = ("step", "cosine", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------- the recipe
@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule. The defaults are the paper's CIFAR recipe (Appendix A).

    schedule: "step" (lr x ``gamma`` at each fraction of training in ``milestones``),
    "cosine" (cosine decay to 0) or "onecycle" (warm up, then anneal; best for short runs).
    Every schedule changes only the learning rate: the momentum stays ``momentum`` throughout
    (PyTorch's ``OneCycleLR`` would cycle it too, unless told not to, as here).
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
        # cycle_momentum=False: OneCycleLR would otherwise also cycle the momentum (0.95 -> 0.85
        # -> 0.95), and the recipe's momentum would not be the momentum that was used.
        return lr_scheduler.OneCycleLR(optimizer, self.lr, total_steps=total_steps, cycle_momentum=False)


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


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> None:
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
    where bf16 is missing) on CUDA and fp32 on CPU. channels_last: NHWC weights and images
    (whether that layout is faster depends on the device and the layer; chapter 10 measures it).
    out: a folder; after every epoch ``checkpoint.pt`` and ``history.json`` are written there
    atomically, so an interruption loses at most the running epoch. resume: continue from
    ``out/checkpoint.pt`` (same model, recipe and epochs) and extend its history.
    meta: what to record about the run (e.g. ``{"model": name, "num_classes": 10}``), checked on resume.
    progress: tqdm bars and one line per epoch (the first also estimates the whole run's
    time); False is silent.
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
        load_model_state(model, state["model"], out / CHECKPOINT, state.get("meta", {}))
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

    first_epoch = len(history) + 1  # after a resume, the first epoch this call runs
    for epoch in range(first_epoch, epochs + 1):
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
            if epoch == first_epoch and epochs > epoch:
                total = row["seconds"] * (epochs - epoch + 1)
                tqdm.write(f"estimated total time: {total:,.0f} s ({total / 60:.1f} min) for the "
                           f"{epochs - epoch + 1} epochs of this run, at this epoch's pace")
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
