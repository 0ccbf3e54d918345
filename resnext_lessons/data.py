"""Datasets and loaders for chapter 7: CIFAR as in the paper, handwritten digits offline.

The paper trains on CIFAR-10/100 with "simple data augmentation" (4-pixel padding, random
32x32 crop, horizontal flip) and per-channel normalisation (Section 5.2, following He et al.).
Machines without internet (CI, these notes' build) cannot download CIFAR, so the package also
offers scikit-learn's ``digits``: 1,797 real 8x8 scans that ship inside scikit-learn. It is used
only when the caller says so (``allow_offline=True``), and the returned :class:`Data` names it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

__all__ = [
    "DATASETS",
    "Data",
    "load_data",
    "load_cifar",
    "load_digits",
    "make_loaders",
]

DATASETS = ("cifar10", "cifar100", "digits")

# Per-channel statistics of the CIFAR training sets (pixels scaled to [0, 1]).
_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}


@dataclass(frozen=True)
class Data:
    """A train/test pair and what a plot or a model needs to know about it.

    ``train[i]`` and ``test[i]`` are ``(image, label)`` with ``image: (3, H, W)`` normalised
    float32 and ``label`` an int in ``[0, num_classes)``. ``note`` says where the images came from.
    """

    name: str
    train: Dataset
    test: Dataset
    classes: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    note: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def title(self) -> str:
        """Short label for plot titles, e.g. ``"digits (offline)"`` or ``"CIFAR-10"``."""
        return {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(self.name, "digits (offline)")

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation for display: ``x: (..., 3, H, W)`` -> values in [0, 1]."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0, 1)


def _cifar_transforms(name: str, train: bool):
    """PIL image -> normalised (3, 32, 32) float tensor; with the paper's pad-crop-flip for training."""
    from torchvision.transforms import v2

    mean, std = _CIFAR_STATS[name]
    augment = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if train else []
    return v2.Compose(
        [v2.ToImage(), *augment, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    )


def load_cifar(name: str = "cifar10", root: str | os.PathLike = "data", download: bool = True) -> Data:
    """CIFAR-10 or CIFAR-100 with the paper's augmentation (pad 4, crop 32, flip) on ``train``.

    Reads ``root`` first; downloads there only if the files are missing and ``download`` is true.
    Raises ``FileNotFoundError`` naming the folder and URL tried when neither works.
    """
    if name not in _CIFAR_STATS:
        raise ValueError(f"unknown CIFAR dataset {name!r}; choose 'cifar10' or 'cifar100'")
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root = Path(root).expanduser()
    tried = f"reading {root / _CIFAR_FOLDERS[name]} (missing or incomplete)"
    try:
        train = cls(root, train=True, transform=_cifar_transforms(name, True))
        test = cls(root, train=False, transform=_cifar_transforms(name, False))
    except RuntimeError:
        if not download:
            raise FileNotFoundError(_cifar_help(name, root, tried + ", no download (download=False)")) from None
        try:
            train = cls(root, train=True, transform=_cifar_transforms(name, True), download=True)
            test = cls(root, train=False, transform=_cifar_transforms(name, False), download=True)
        except Exception as error:  # no network, proxy, disk full: all end the same way
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            tried += f", then downloading {_CIFAR_URLS[name]} ({reason})"
            raise FileNotFoundError(_cifar_help(name, root, tried)) from None
        source = f"downloaded to {root}"
    else:
        source = f"read from {root}"
    mean, std = _CIFAR_STATS[name]
    return Data(name, train, test, tuple(train.classes), 32, mean, std, f"{name} {source}")


def _cifar_help(name: str, root: Path, tried: str) -> str:
    archive = _CIFAR_URLS[name].rsplit("/", 1)[1]
    return (
        f"{name} is not available: tried {tried}. Put {archive} (from {_CIFAR_URLS[name]}) "
        f"or its extracted folder {_CIFAR_FOLDERS[name]}/ in {root}/, "
        "or allow the offline 'digits' dataset (allow_offline=True, or --data digits)."
    )


def load_digits(image_size: int = 16, test_fraction: float = 0.2, seed: int = 0) -> Data:
    """scikit-learn's handwritten digits as 3-channel ``(3, image_size, image_size)`` images.

    A fixed, stratified split (same ``seed`` -> same split) of the 1,797 scans; pixels are
    scaled to [0, 1], resized bilinearly, and normalised with the training split's mean and std.
    No augmentation: flips would turn digits into other shapes.
    """
    if image_size < 8:
        raise ValueError(f"image_size={image_size} is smaller than the 8x8 scans; use 8 or more")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction} must lie strictly between 0 and 1")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    if image_size != 8:
        images = F.interpolate(images, size=image_size, mode="bilinear", align_corners=False)
    images = images.expand(-1, 3, -1, -1).contiguous()  # grey -> the 3 channels every model expects
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    split = train_test_split(range(len(labels)), test_size=test_fraction, stratify=bunch.target, random_state=seed)
    train_idx, test_idx = (torch.as_tensor(indices) for indices in split)
    mean = images[train_idx].mean().item()
    std = images[train_idx].std().item()
    images = (images - mean) / std
    train = TensorDataset(images[train_idx], labels[train_idx])
    test = TensorDataset(images[test_idx], labels[test_idx])
    classes = tuple(str(int(c)) for c in bunch.target_names)
    note = (f"digits: {len(train)} train / {len(test)} test real 8x8 scans from scikit-learn, "
            f"resized to {image_size}x{image_size}")
    return Data("digits", train, test, classes, image_size, (mean,) * 3, (std,) * 3, note)


def load_data(
    name: str = "cifar10",
    root: str | os.PathLike = "data",
    *,
    download: bool = True,
    allow_offline: bool = False,
    digits_size: int = 16,
) -> Data:
    """The dataset called ``name`` (one of ``DATASETS``).

    If CIFAR cannot be read or downloaded, raise ``FileNotFoundError`` saying what was tried,
    unless ``allow_offline``: then return ``digits`` instead, with the reason in ``Data.note``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        return load_digits(digits_size)
    try:
        return load_cifar(name, root, download=download)
    except FileNotFoundError as error:
        if not allow_offline:
            raise
        digits = load_digits(digits_size)
        return replace(digits, note=f"{digits.note} (offline fallback, because {error})")


def default_workers(data: Data, device: torch.device | str, world_size: int = 1) -> int:
    """Loader processes: none for in-memory tensors, more when a GPU is waiting for images."""
    if isinstance(data.train, TensorDataset):
        return 0  # already tensors in memory: a worker would only add copying
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cpus = max(1, cpus // world_size)
    # On CPU the model needs the cores too; one helper decodes while the rest compute.
    return min(8, cpus) if torch.device(device).type == "cuda" else min(2, cpus - 1)


def make_loaders(
    data: Data,
    batch_size: int,
    device: torch.device | str = "cpu",
    *,
    workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Training and test loaders for one process of ``world_size``; ``batch_size`` is per process.

    Training batches are shuffled (by a ``DistributedSampler`` when ``world_size > 1``) and the
    last incomplete batch is dropped so BatchNorm never sees a batch of one. Each process tests on
    every ``world_size``-th image, so their counts add up to the whole test set exactly once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    if batch_size > len(data.train):
        raise ValueError(
            f"batch_size={batch_size} is larger than the {len(data.train)} training images of "
            f"{data.name} per process; use a smaller batch"
        )
    device = torch.device(device)
    workers = default_workers(data, device, world_size) if workers is None else workers
    common = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    if world_size > 1:
        sampler = DistributedSampler(data.train, world_size, rank, shuffle=True, seed=seed)
        train = DataLoader(data.train, batch_size, sampler=sampler, drop_last=True, **common)
        test_set = Subset(data.test, range(rank, len(data.test), world_size))
    else:
        train = DataLoader(data.train, batch_size, shuffle=True, drop_last=True, **common)
        test_set = data.test
    test = DataLoader(test_set, 2 * batch_size, shuffle=False, **common)
    return train, test
