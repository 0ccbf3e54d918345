"""The matched-pair, multi-seed comparison of chapter 8, and what it can and cannot resolve.

One experiment trains a ResNet (one path of width ``resnet_width``) and a ResNeXt
(``cardinality`` paths of width ``width``) of matched complexity, with the same data, recipe and
seeds, and writes every history with its provenance to ``book/results/<preset>.json`` plus the
best run of each model to ``book/results/<preset>.pt``::

    python -m resnext_lessons.experiments --preset cpu-small
    python -m resnext_lessons.experiments --preset gpu-full --device cuda

The statistics (``summarize``, ``detectable_difference``, ``verdict``) say what the seeds and
the test-set size allow one to conclude; ``load_result`` and ``load_models`` read a run back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import complexity
from .data import Data, load_data, make_loaders
from .models import ResNeXt
from .notebook import device_name, resolve_device
from .stats import MODEL_KEYS, detectable_difference, final_accuracies, summarize, verdict
from .train import Recipe, fit, seed_everything

__all__ = [
    "ExperimentConfig", "PRESETS", "RESULTS_DIR", "MODEL_KEYS", "config_hash", "match_pair",
    "complexity_gaps", "build_pair", "run_experiment", "save_result", "load_result", "load_models",
    "result_origin",
    "final_accuracies", "summarize", "detectable_difference", "verdict", "main",
]

RESULTS_DIR = Path(__file__).resolve().parent.parent / "book" / "results"
# Where a copy of the package without the book (pip install, Colab) finds the committed results.
RESULTS_URL = "https://raw.githubusercontent.com/resnext-lessons/resnext-from-scratch/main/book/results"
RESULTS_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "resnext_lessons" / "results"
CHECKPOINT_FORMAT = "resnext_lessons.experiments/1"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides an experiment's numbers (the device and thread count do not enter).

    data: "fashion-mnist" (falls back to "digits" when the files are missing and
    ``allow_offline``) or "digits". train_size/test_size: a fixed subset (None: all).
    layers: blocks per stage of both networks (CIFAR stem, see ``models.ResNeXt``).
    The pair: ResNet ``1 x resnet_width d`` against ResNeXt ``cardinality x width d``.
    Recipe: SGD (momentum 0.9, Nesterov) with ``schedule`` at peak ``lr``, batch ``batch_size``.
    """

    name: str
    data: str
    image_size: int
    train_size: int | None
    test_size: int | None
    layers: tuple[int, ...]
    resnet_width: int
    cardinality: int
    width: int
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    num_classes: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds} must hold at least 2 distinct seeds to measure a spread")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs={self.epochs} and batch_size={self.batch_size} must be at least 1")

    @property
    def depth(self) -> int:
        """Weighted layers: the stem, three convolutions per block and the classifier."""
        return 3 * sum(self.layers) + 2

    def model_names(self) -> dict[str, str]:
        """``{"resnet": "resnet14_1x24d", "resnext": "resnext14_8x4d"}`` for layers (2, 2)."""
        return {
            "resnet": f"resnet{self.depth}_1x{self.resnet_width}d",
            "resnext": f"resnext{self.depth}_{self.cardinality}x{self.width}d",
        }

    def recipe(self) -> Recipe:
        return Recipe(lr=self.lr, weight_decay=self.weight_decay, schedule=self.schedule)


def config_hash(config: ExperimentConfig) -> str:
    """The first 12 hex digits of the SHA-256 of the config as sorted JSON: a changed preset
    gets another hash, so a result written by an older preset is recognised as stale."""
    text = json.dumps(asdict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- matched pairs
def complexity_gaps(
    layers: Sequence[int], resnet_width: int, cardinality: int, width: int, image_size: int, num_classes: int = 10
) -> dict[str, float]:
    """Relative gaps ResNeXt/ResNet - 1 in parameters and multiply-adds per image (closed form)."""
    layers = list(layers)
    p0 = complexity.resnext_params(layers, 1, resnet_width, num_classes, "cifar")
    m0 = complexity.resnext_macs(layers, 1, resnet_width, num_classes, "cifar", image_size)
    p1 = complexity.resnext_params(layers, cardinality, width, num_classes, "cifar")
    m1 = complexity.resnext_macs(layers, cardinality, width, num_classes, "cifar", image_size)
    return {"params": p1 / p0 - 1, "macs": m1 / m0 - 1}


def match_pair(
    layers: Sequence[int],
    image_size: int,
    cardinality: int = 8,
    resnet_widths: Sequence[int] = range(16, 129, 8),
    widths: Sequence[int] = range(1, 33),
    num_classes: int = 10,
) -> tuple[int, int, dict[str, float]]:
    """The (ResNet width, ResNeXt width d) whose networks differ least in the worse of
    parameters and multiply-adds, searched over the given widths (ResNet widths in multiples
    of 8 by default); returns them with the gaps.

    Needed because Table 2's rule (``complexity.width_for_cardinality``) matches blocks with a
    256-channel input and output; in these short networks most blocks are a stage's first
    block, whose input has 64 or 256 channels and whose projection shortcut is not grouped.
    """
    best: tuple[float, int, int, dict[str, float]] | None = None
    for resnet_width in resnet_widths:
        for width in widths:
            try:
                gaps = complexity_gaps(layers, resnet_width, cardinality, width, image_size, num_classes)
            except ValueError:  # a width that leaves a group no channel in some stage
                continue
            worst = max(abs(gaps["params"]), abs(gaps["macs"]))
            if best is None or worst < best[0]:
                best = (worst, resnet_width, width, gaps)
    if best is None:
        raise ValueError(f"no width in {widths} builds a ResNeXt of cardinality {cardinality}; widen the range")
    return best[1], best[2], best[3]


def build_pair(config: ExperimentConfig, seed: int) -> dict[str, nn.Module]:
    """The two networks of ``config``, each initialised from ``seed`` (the same draws for both)."""
    pair = {}
    for key, (cardinality, width) in {
        "resnet": (1, config.resnet_width), "resnext": (config.cardinality, config.width)
    }.items():
        seed_everything(seed)
        pair[key] = ResNeXt(list(config.layers), cardinality, width, num_classes=config.num_classes, stem="cifar")
    return pair


# ----------------------------------------------------------------------------- presets
# The pair 1x24d / 8x4d is what ``match_pair(layers, image_size, cardinality=8)`` returns for
# every preset below (a test checks it); within 2% in parameters and in multiply-adds.
PRESETS: dict[str, ExperimentConfig] = {
    # What chapter 8 runs live: about a minute on two CPU cores.
    "notebook-cpu": ExperimentConfig(
        name="notebook-cpu", data="fashion-mnist", image_size=14, train_size=1000, test_size=500,
        layers=(2, 2), resnet_width=24, cardinality=8, width=4, epochs=2, batch_size=25, seeds=(0, 1, 2),
        lr=0.05,
    ),
    # What chapter 8 runs live on a GPU (Colab): a few minutes.
    "notebook-gpu": ExperimentConfig(
        name="notebook-gpu", data="fashion-mnist", image_size=28, train_size=20000, test_size=10000,
        layers=(2, 2), resnet_width=24, cardinality=8, width=4, epochs=5, batch_size=128, seeds=(0, 1, 2),
    ),
    # The committed reference run: one CPU thread, about half an hour on a busy 2-core machine.
    "cpu-small": ExperimentConfig(
        name="cpu-small", data="fashion-mnist", image_size=14, train_size=10000, test_size=5000,
        layers=(2, 2), resnet_width=24, cardinality=8, width=4, epochs=6, batch_size=50,
        seeds=(0, 1, 2, 3, 4),
        lr=0.05,
    ),
    # For a GPU (not run to build the book): all of Fashion-MNIST at 28x28, deeper nets, 5 seeds.
    "gpu-full": ExperimentConfig(
        name="gpu-full", data="fashion-mnist", image_size=28, train_size=None, test_size=None,
        layers=(3, 3, 3), resnet_width=24, cardinality=8, width=4, epochs=30, batch_size=128,
        seeds=(0, 1, 2, 3, 4),
    ),
}


# ----------------------------------------------------------------------------- running
def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        return commit + ("+uncommitted" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_experiment(
    config: ExperimentConfig,
    *,
    device: torch.device | str | None = None,
    root: str | os.PathLike = "data",
    allow_offline: bool = True,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    data: Data | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Train both models of ``config`` once per seed (ResNet, then ResNeXt, seed by seed) and
    return the result (the keys are listed in the module's docs and in ``save_result``).

    out: a folder; after every run ``<config.name>.json`` is rewritten there (``"complete":
    false`` until the last run), and at the end ``<config.name>.pt`` holds the best run of each
    model. progress: one line per run. data: the dataset already loaded with the config's
    sizes (saves reading it twice); by default it is loaded here. threads: CPU threads while
    training (default 1: networks this small gain little from more threads, and lose a lot when
    other programs share the cores; measured here, two threads on two busy cores took 13 times
    the CPU time of one); None keeps torch's setting. Restored afterwards.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(config, device, root, allow_offline, out, progress, data)
    finally:
        torch.set_num_threads(before)


def _run(config: ExperimentConfig, device: torch.device | str | None, root: str | os.PathLike,
         allow_offline: bool, out: str | os.PathLike | None, progress: bool, data: Data | None) -> dict[str, Any]:
    device = resolve_device(device)
    start = time.perf_counter()
    if data is None:
        data = load_data(config.data, root, allow_offline=allow_offline, image_size=config.image_size,
                         train_size=config.train_size, test_size=config.test_size)
    elif data.image_size != config.image_size and data.name != "digits":
        raise ValueError(f"data is {data.image_size}x{data.image_size}, the config says {config.image_size}; "
                         "load it with the config's image_size")
    names = config.model_names()
    gaps = complexity_gaps(config.layers, config.resnet_width, config.cardinality, config.width,
                           data.image_size, config.num_classes)
    pair = build_pair(config, 0)
    shape = (1, 3, data.image_size, data.image_size)
    result: dict[str, Any] = {
        "preset": config.name,
        "config": asdict(config),
        "config_hash": config_hash(config),
        "complete": False,
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": _git_commit(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": 0.0,
        "data": {"name": data.name, "title": data.title, "note": data.note, "route": data.route,
                 "train_images": len(data.train),
                 "test_images": len(data.test), "image_size": data.image_size, "classes": list(data.classes),
                 "mean": data.mean[0], "std": data.std[0]},
        "models": {key: {"name": names[key], "params": complexity.count_params(m),
                         "macs": complexity.count_flops(m, shape)} for key, m in pair.items()},
        "complexity_gaps": gaps,
        "runs": [],
    }
    best: dict[str, tuple[float, int, dict[str, torch.Tensor]]] = {}
    train_loader, test_loader = None, None
    for seed in config.seeds:
        train_loader, test_loader = make_loaders(data, config.batch_size, device, seed=seed)
        for key, model in build_pair(config, seed).items():
            run_start = time.perf_counter()
            history = fit(model, train_loader, test_loader, config.epochs, config.recipe(), device=device,
                          seed=seed, progress=False)
            acc = history[-1]["test_acc"]
            result["runs"].append({"model": key, "seed": seed, "history": history,
                                   "seconds": time.perf_counter() - run_start})
            if key not in best or acc > best[key][0]:
                state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
                best[key] = (acc, seed, state)
            if progress:
                print(f"[{config.name}] {names[key]} seed {seed}: test accuracy {acc:.2%} "
                      f"({time.perf_counter() - run_start:.0f} s)", flush=True)
            result["wall_seconds"] = time.perf_counter() - start
            if out is not None:
                save_result(result, out)
    result.update(_statistics(result))
    result["complete"] = True
    result["best_runs"] = {key: {"seed": seed, "test_acc": acc} for key, (acc, seed, _) in best.items()}
    result["wall_seconds"] = time.perf_counter() - start
    if out is not None:
        result["checkpoint"] = f"{config.name}.pt"
        _save_models(config, result, best, Path(out) / result["checkpoint"])
        save_result(result, out)
    return result


def _statistics(result: dict[str, Any]) -> dict[str, Any]:
    summary = summarize(final_accuracies(result))
    n_test = result["data"]["test_images"]
    pooled_std = math.sqrt(statistics.fmean([s["std"] ** 2 for s in summary.values()]))
    accuracy = statistics.fmean([s["mean"] for s in summary.values()])
    n = min(s["n"] for s in summary.values())
    return {
        "summary": summary,
        "difference": summary["resnext"]["mean"] - summary["resnet"]["mean"],
        "detectable_difference": detectable_difference(n_test, pooled_std, n, accuracy=accuracy),
        "verdict": verdict(summary, n_test),
    }


def _save_models(config: ExperimentConfig, result: dict[str, Any], best: dict, path: Path) -> None:
    models = {}
    for key, (acc, seed, state) in best.items():
        cardinality, width = (1, config.resnet_width) if key == "resnet" else (config.cardinality, config.width)
        models[key] = {
            "name": result["models"][key]["name"], "seed": seed, "test_acc": acc, "state_dict": state,
            "arch": {"layers": list(config.layers), "cardinality": cardinality, "bottleneck_width": width,
                     "num_classes": config.num_classes, "stem": "cifar"},
        }
    state = {"format": CHECKPOINT_FORMAT, "preset": config.name, "config_hash": result["config_hash"],
             "data": result["data"], "models": models}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def save_result(result: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write ``result`` to ``out/<preset>.json`` atomically; returns the path."""
    path = Path(out) / f"{result['preset']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _result_path(name_or_path: str | os.PathLike, suffix: str, download: bool) -> tuple[Path, str]:
    """The file of a result (by path, or by preset name in ``book/results/``, else in the cache,
    downloaded from ``RESULTS_URL`` when ``download``); and what was tried, for an error."""
    path = Path(name_or_path)
    if path.suffix in (".json", ".pt"):
        return path.with_suffix(suffix), str(path.with_suffix(suffix))
    name = f"{name_or_path}{suffix}"
    local, cached, url = RESULTS_DIR / name, RESULTS_CACHE / name, f"{RESULTS_URL}/{name}"
    if local.is_file() or cached.is_file() or not download:
        return (local if local.is_file() or not cached.is_file() else cached), f"{local} and {cached}"
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            payload = response.read()
    except Exception as error:  # offline, proxy, not published: all end the same way
        return local, f"{local}, {cached}, and {url} ({type(error).__name__})"
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, cached)
    return cached, url


def result_origin(name_or_path: str | os.PathLike, download: bool = True) -> str:
    """Where ``load_result`` and ``load_models`` find a result's JSON file and checkpoint, as a
    phrase: this checkout's ``book/results/``, or the book's repository (downloaded into
    ``RESULTS_CACHE``), fetching both files now if they are missing.

    Raises ``FileNotFoundError`` as ``load_result`` does when neither is reachable.
    """
    paths = [_result_path(name_or_path, suffix, download)[0] for suffix in (".json", ".pt")]
    if not all(path.is_file() for path in paths):
        load_result(name_or_path, download=False)  # the error that names what was tried
        raise FileNotFoundError(f"no checkpoint beside {paths[0]}")
    if all(path.parent == RESULTS_CACHE for path in paths):
        return f"downloaded from the book's repository ({RESULTS_URL})"
    return f"read from {paths[0].parent}"


def load_result(name_or_path: str | os.PathLike, download: bool = True) -> dict[str, Any]:
    """A result by preset name (from ``book/results/``; where the book is not checked out, from
    the book's repository when ``download``) or by path to its JSON file.

    Raises ``FileNotFoundError`` naming what was tried and the command that makes it.
    """
    path, tried = _result_path(name_or_path, ".json", download)
    if not path.is_file():
        raise FileNotFoundError(f"no result: tried {tried}; make it with "
                                f"`python -m resnext_lessons.experiments --preset {path.stem}`")
    result = json.loads(path.read_text())
    if "config_hash" not in result or "runs" not in result:
        raise ValueError(f"{path} is not a result of resnext_lessons.experiments")
    return result


def load_models(
    name_or_path: str | os.PathLike, map_location: str | torch.device = "cpu", download: bool = True
) -> dict[str, tuple[nn.Module, dict[str, Any]]]:
    """The trained networks saved with a result: ``{"resnet": (model, info), "resnext": (model, info)}``,
    models in eval mode; ``info`` holds ``name``, ``seed``, ``test_acc`` and ``arch`` (the
    ``ResNeXt`` arguments). Found as ``load_result`` finds the JSON. Loaded with
    ``weights_only=True``: no code is unpickled."""
    path, tried = _result_path(name_or_path, ".pt", download)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint: tried {tried}; it is written at the end of "
                                f"`python -m resnext_lessons.experiments --preset {path.stem}`")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of resnext_lessons.experiments")
    out = {}
    for key, entry in state["models"].items():
        arch = entry["arch"]
        model = ResNeXt(arch["layers"], arch["cardinality"], arch["bottleneck_width"],
                        num_classes=arch["num_classes"], stem=arch["stem"])
        model.load_state_dict(entry["state_dict"])
        info = {k: v for k, v in entry.items() if k != "state_dict"}
        out[key] = (model.to(map_location).eval(), info)
    return out


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``python -m resnext_lessons.experiments --preset NAME``; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m resnext_lessons.experiments",
        description="Train the matched ResNet/ResNeXt pair with several seeds and write "
        "book/results/<preset>.json (every history, provenance, statistics) and <preset>.pt.",
    )
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="the experiment to run")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--root", default="data", help="folder holding (or receiving) the datasets (default ./data)")
    p.add_argument("--out", default=str(RESULTS_DIR), help=f"output folder (default {RESULTS_DIR})")
    p.add_argument("--no-offline", action="store_true", help="fail instead of falling back to digits")
    args = p.parse_args(argv)
    config = PRESETS[args.preset]
    try:
        result = run_experiment(config, device=args.device, root=args.root, allow_offline=not args.no_offline,
                                out=args.out, progress=True)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for key, s in result["summary"].items():
        print(f"{result['models'][key]['name']}: {100 * s['mean']:.2f} +- {100 * s['std']:.2f} % (n={s['n']})")
    print(f"{result['verdict']}; detectable difference {100 * result['detectable_difference']:.2f} points; "
          f"{result['wall_seconds'] / 60:.1f} min; {Path(args.out) / (config.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
