"""Datasets and loaders for chapter 8: CIFAR as in the paper, Fashion-MNIST and digits offline.

The paper trains its CIFAR models (Sec. 5.3; the recipe is in its Appendix A) on 32x32 crops
of the zero-padded 40x40 image or its horizontal flip, following He et al.; ``load_cifar``
does that, with per-channel normalisation. Machines without internet cannot download CIFAR,
so the package also reads two real datasets offline:

- Fashion-MNIST (Xiao et al., 2017): 60,000 + 10,000 grey 28x28 photos of clothes in 10
  classes, from torchvision's folder, Debian's ``dataset-fashion-mnist`` package, or a download;
- scikit-learn's ``digits``: 1,797 real 8x8 scans that ship inside scikit-learn.

A fallback to digits happens only when the caller allows it (``allow_offline=True``), and the
returned :class:`Data` names what was used in ``note``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

__all__ = [
    "DATASETS",
    "Data",
    "dataset_title",
    "load_data",
    "load_cifar",
    "load_digits",
    "load_fashion_mnist",
    "FASHION_MNIST_SYSTEM_DIR",
    "make_loaders",
]

DATASETS = ("cifar10", "cifar100", "digits", "fashion-mnist")

# Per-channel statistics of the CIFAR training sets (pixels scaled to [0, 1]).
_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST"}
# The title of any other dataset (the digits), by language: English, and Korean for the book's Korean edition.
_DIGITS_TITLE = {"en": "digits (offline)", "ko": "손글씨 숫자(오프라인)"}
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}


@dataclass(frozen=True)
class Data:
    """A train/test pair and what a plot or a model needs to know about it.

    ``train[i]`` and ``test[i]`` are ``(image, label)`` with ``image: (3, H, W)`` normalised
    float32 and ``label`` an int in ``[0, num_classes)``. ``note`` says where the images came from;
    ``route`` names the branch in one word: "read" (a local copy: CIFAR's root, torchvision's
    folder or Debian's package), "download", "builtin" (digits, inside scikit-learn) or
    "offline-fallback" (digits instead of the dataset asked for). ``note_ko`` says what ``note``
    says in Korean, with the same numbers and paths (the book's Korean edition pastes it).
    """

    name: str
    train: Dataset
    test: Dataset
    classes: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    note: str
    route: str = "read"
    note_ko: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def title(self) -> str:
        """Short label for plot titles, e.g. ``"digits (offline)"`` or ``"CIFAR-10"``."""
        return dataset_title(self.name)

    def title_in(self, language: str = "en") -> str:
        """``title`` in ``language``: "en" (the same) or "ko" (Korean; dataset names stay)."""
        return dataset_title(self.name, language)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation for display: ``x: (..., 3, H, W)`` -> values in [0, 1]."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0, 1)


def dataset_title(name: str, language: str = "en") -> str:
    """The short label of the dataset called ``name``: ``"CIFAR-10"``, ``"Fashion-MNIST"``, or for
    the digits ``"digits (offline)"``; ``language="ko"`` gives the Korean edition's label (the
    names of CIFAR and Fashion-MNIST stay as they are)."""
    if language not in _DIGITS_TITLE:
        raise ValueError(f"language={language!r}; choose one of {', '.join(_DIGITS_TITLE)}")
    return _TITLES.get(name, _DIGITS_TITLE[language])


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
        source, route, source_ko = f"downloaded to {root}", "download", f"{root}에 내려받음"
    else:
        source, route, source_ko = f"read from {root}", "read", f"{root}에서 읽음"
    mean, std = _CIFAR_STATS[name]
    return Data(name, train, test, tuple(train.classes), 32, mean, std, f"{name} {source}", route,
                f"{name}: {source_ko}")


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
    note_ko = (f"digits: 학습 {len(train)}장 / 테스트 {len(test)}장, scikit-learn의 실제 8x8 스캔, "
               f"{image_size}x{image_size} 크기로 조정")
    return Data("digits", train, test, classes, image_size, (mean,) * 3, (std,) * 3, note, "builtin", note_ko)


# ----------------------------------------------------------------------------- Fashion-MNIST
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Where Debian's (and Ubuntu's) package dataset-fashion-mnist installs the four files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte")


def _read_idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (the MNIST format; gzip-compressed if ``path`` ends in .gz).

    Raises ``ValueError`` naming ``path`` when it is truncated or not an IDX file.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} is not readable ({type(error).__name__}: {error}): corrupt or truncated") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (wrong header): corrupt or another file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = header + (int(torch.tensor(dims).prod()) if dims else 0)
    if len(raw) != expected:
        raise ValueError(f"{path} holds {len(raw):,} bytes where its header {dims} needs {expected:,}: "
                         "truncated or corrupt")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).view(*dims)


def _read_fashion_folder(folder: Path) -> tuple[torch.Tensor, ...]:
    """(train images (60000, 28, 28) uint8, train labels, test images, test labels) from ``folder``,
    which holds the four files extracted or as ``.gz``. FileNotFoundError / ValueError say why not."""
    paths = []
    for name in _FASHION_FILES:
        found = [folder / n for n in (name, name + ".gz") if (folder / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{folder / name}[.gz] is missing")
        paths.append(found[0])
    train_x, train_y, test_x, test_y = (_read_idx(p) for p in paths)
    for images, labels, p in [(train_x, train_y, paths[0]), (test_x, test_y, paths[2])]:
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(f"{p}: {tuple(images.shape)} images for {tuple(labels.shape)} labels; corrupt files")
        if int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise ValueError(f"{p}: a label is {int(labels.max())}, beyond the 10 classes; corrupt files")
    return train_x, train_y.long(), test_x, test_y.long()


def _subset(n: int | None, total: int, generator: torch.Generator, what: str) -> torch.Tensor:
    if n is None:
        return torch.arange(total)
    if not 0 < n <= total:
        raise ValueError(f"{what}={n} must lie in [1, {total:,}] (the images Fashion-MNIST has)")
    return torch.randperm(total, generator=generator)[:n].sort().values


def load_fashion_mnist(
    root: str | os.PathLike = "data",
    image_size: int = 28,
    train_size: int | None = None,
    test_size: int | None = None,
    *,
    download: bool = True,
    seed: int = 0,
) -> Data:
    """Fashion-MNIST as 3-channel ``(3, image_size, image_size)`` images, no augmentation.

    Reads, in this order: torchvision's folder ``root/FashionMNIST/raw``, then Debian's
    ``FASHION_MNIST_SYSTEM_DIR`` (package ``dataset-fashion-mnist``), then downloads with
    torchvision into ``root`` when ``download``. Raises ``FileNotFoundError`` naming all three
    routes and why each failed. ``train_size``/``test_size`` take a fixed random subset (same
    ``seed``, same images); pixels are scaled to [0, 1], resized (antialiased bilinear) and
    normalised with the training subset's mean and std.
    """
    if not 8 <= image_size <= 64:
        raise ValueError(f"image_size={image_size} must lie in [8, 64]; the photos are 28x28")
    root = Path(root).expanduser()
    torchvision_dir = root / "FashionMNIST" / "raw"
    tried: list[str] = []
    arrays = None
    for folder, label, label_ko in [(torchvision_dir, "torchvision's folder", "torchvision의 폴더"),
                                    (FASHION_MNIST_SYSTEM_DIR, "Debian's dataset-fashion-mnist",
                                     "Debian의 dataset-fashion-mnist")]:
        try:
            arrays, source, route = _read_fashion_folder(folder), f"read from {folder} ({label})", "read"
            source_ko = f"{folder}({label_ko})에서 읽음"
            break
        except (FileNotFoundError, ValueError) as error:
            tried.append(f"{label} {folder}: {str(error).splitlines()[0]}")
    if arrays is None:
        if not download:
            tried.append("torchvision's download: not tried (download=False)")
        else:
            from torchvision.datasets import FashionMNIST

            try:  # downloads the four files into torchvision_dir and checks their md5 sums
                FashionMNIST(root, train=True, download=True)
                failure = None
            except Exception as error:  # no network, proxy, disk full: all end the same way
                failure = f"{type(error).__name__}: {error}".splitlines()[0]
            try:
                arrays, source = _read_fashion_folder(torchvision_dir), f"downloaded to {torchvision_dir}"
                route, source_ko = "download", f"{torchvision_dir}에 내려받음"
            except (FileNotFoundError, ValueError) as error:
                tried.append(f"torchvision's download into {root}: {failure or str(error).splitlines()[0]}")
    if arrays is None:
        raise FileNotFoundError(
            "Fashion-MNIST is not available. Tried, in order: " + "; ".join(f"({i}) {t}" for i, t in enumerate(tried, 1))
            + f". Fix one: `apt-get install dataset-fashion-mnist`, or put the four *-ubyte.gz files in "
            f"{torchvision_dir}/, or run once with network access; or use the offline 'digits' dataset "
            "(allow_offline=True, or --data digits)."
        )
    train_x, train_y, test_x, test_y = arrays
    generator = torch.Generator().manual_seed(seed)
    train_idx = _subset(train_size, len(train_y), generator, "train_size")
    test_idx = _subset(test_size, len(test_y), generator, "test_size")

    def prepare(images: torch.Tensor) -> torch.Tensor:  # (N, 28, 28) uint8 -> (N, 1, S, S) float
        x = images.unsqueeze(1).float() / 255.0
        if image_size != x.shape[-1]:
            x = F.interpolate(x, size=image_size, mode="bilinear", align_corners=False, antialias=True)
        return x

    train_images, test_images = prepare(train_x[train_idx]), prepare(test_x[test_idx])
    mean, std = train_images.mean().item(), train_images.std().item()
    # Grey -> the 3 channels every model expects; expand is a view, so memory stays one channel.
    train_images = ((train_images - mean) / std).expand(-1, 3, -1, -1)
    test_images = ((test_images - mean) / std).expand(-1, 3, -1, -1)
    train = TensorDataset(train_images, train_y[train_idx])
    test = TensorDataset(test_images, test_y[test_idx])
    note = (f"fashion-mnist: {len(train):,} train / {len(test):,} test real 28x28 photos {source}, "
            f"resized to {image_size}x{image_size}")
    note_ko = (f"fashion-mnist: 학습 {len(train):,}장 / 테스트 {len(test):,}장, 실제 28x28 사진, {source_ko}, "
               f"{image_size}x{image_size} 크기로 조정")
    return Data("fashion-mnist", train, test, FASHION_MNIST_CLASSES, image_size, (mean,) * 3, (std,) * 3, note,
                route, note_ko)


def load_data(
    name: str = "cifar10",
    root: str | os.PathLike = "data",
    *,
    download: bool = True,
    allow_offline: bool = False,
    digits_size: int = 16,
    image_size: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Data:
    """The dataset called ``name`` (one of ``DATASETS``).

    If CIFAR or Fashion-MNIST cannot be read or downloaded, raise ``FileNotFoundError`` saying
    what was tried, unless ``allow_offline``: then return ``digits`` instead, with the reason in
    ``Data.note``. image_size: the side of digits (default ``digits_size``) and Fashion-MNIST
    (default 28); CIFAR is always 32. train_size, test_size: a subset of Fashion-MNIST.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        return load_digits(image_size or digits_size)
    try:
        if name == "fashion-mnist":
            return load_fashion_mnist(root, image_size or 28, train_size, test_size, download=download)
        return load_cifar(name, root, download=download)
    except FileNotFoundError as error:
        if not allow_offline:
            raise
        digits = load_digits(image_size or digits_size)
        return replace(digits, note=f"{digits.note} (offline fallback, because {error})", route="offline-fallback",
                       note_ko=f"{digits.note_ko} (오프라인 대체, 원인: {error})")


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
