"""What every chapter notebook does first and last: pick a device, size the work, sign the page.

Each chapter opens with ``DEVICE = pick_device()`` and sizes its experiments with
``by_device(DEVICE, cpu=..., cuda=...)`` so one notebook runs quickly on a laptop CPU (and in
the tests) and at full size on a GPU. Numbers quoted in the prose are named with ``glue``. Its
last cell, ``footer(DEVICE)``, records which machine produced the page's numbers.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import IPython.display
from IPython.display import Markdown

T = TypeVar("T")

REQUIRE_GPU_ENV = "RESNEXT_REQUIRE_GPU"


def in_colab() -> bool:
    """True when running inside Google Colab (its runtime imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def pick_device() -> torch.device:
    """The device a chapter runs on: ``cuda`` when available, else ``cpu``.

    With the environment variable ``RESNEXT_REQUIRE_GPU=1`` (the GPU CI job sets it), a missing
    GPU is an error instead of a silent, slow CPU run.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get(REQUIRE_GPU_ENV) == "1":
        raise RuntimeError(
            f"{REQUIRE_GPU_ENV}=1 asks for a GPU, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
            f"Unset {REQUIRE_GPU_ENV} to run on the CPU at the quick sizes, or run where a GPU "
            "is visible (in Colab: Runtime > Change runtime type > GPU)."
        )
    return torch.device("cpu")


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The device a command line or ``fit`` was asked for: None or "auto" is ``pick_device()``.

    A name that is no device, or ``cuda`` where torch sees no GPU, is a ValueError that says
    what to use instead.
    """
    if name is None or name == "auto":
        return pick_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name!r} is not a device; use cpu, cuda or auto"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device {name}, but torch sees no GPU here: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); use --device cpu, or run where a GPU is visible."
        )
    return device


def by_device(device: torch.device, *, cpu: T, cuda: T) -> T:
    """Choose a size by device: ``cpu`` (quick, what the tests run) or ``cuda`` (full size).

    Example: ``STEPS = by_device(DEVICE, cpu=20, cuda=2_000)``.
    """
    return cuda if torch.device(device).type == "cuda" else cpu


# The translated editions of the book (see _ext/translation.py): a phrase glued into the prose
# has, beside its English value under ``name``, one per edition under ``name + "__" + language``.
TRANSLATIONS = ("ko",)


def _cpu_model() -> str:
    # platform.processor() is empty on most Linux machines; /proc/cpuinfo has the marketing name.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device, language: str = "en") -> str:
    """A readable name for ``device``: the GPU's name (e.g. ``NVIDIA H100``) or the CPU model.

    ``language="ko"`` words the CPU's core count in Korean, for the book's Korean edition."""
    if language not in TRANSLATIONS + ("en",):
        raise ValueError(
            f"language={language!r}: choose one of en, {', '.join(TRANSLATIONS)}"
        )
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        cores = os.cpu_count()
        count = f"논리 코어 {cores}개" if language == "ko" else f"{cores} logical cores"
        return f"{_cpu_model()} ({count})"
    return device.type


def glue(name: str, value: Any, display: bool = True) -> None:
    """Name ``value`` for the book's ``{glue:text}`` roles (``myst_nb.glue``).

    Colab does not ship myst-nb, and gluing only matters when the book is built, so there the
    value is just shown (when ``display``). Same signature as ``myst_nb.glue``. NumPy scalars and
    0-d tensors become Python numbers first: their repr (``np.float64(0.5)``) defeats the
    ``{glue:text}`key:.2f``` format specs.
    """
    if isinstance(value, (np.generic, torch.Tensor)) and value.ndim == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            IPython.display.display(value)
        return
    myst_glue(name, value, display=display)


def glue_prose(name: str, english: str, korean: str) -> None:
    """Glue a phrase of the prose (Markdown) in English and in Korean.

    ``{glue:md}`name``` pastes ``english`` on the English site. The Korean site's build pastes
    ``korean`` (glued as ``name__ko``) wherever its translation pastes ``name``, so a sentence
    the code writes reads in the page's language. Numbers in the two must be the same
    (tests/test_korean.py checks). Both may be empty, when there is nothing to say.
    """
    if bool(english.strip()) != bool(korean.strip()):  # both empty: nothing to say
        raise ValueError(
            f"glue_prose({name!r}): both the English and the Korean text are needed"
        )
    glue(name, Markdown(english), display=False)
    glue(f"{name}__ko", Markdown(korean), display=False)


def footer(device: torch.device) -> Markdown:
    """The closing line of every chapter: device, torch version and UTC time of execution.

    Rendered as Markdown, so the built page states which machine produced its numbers.
    """
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    device = torch.device(device)
    return Markdown(
        f"*This page was executed on {device_name(device)} (`{device.type}`) "
        f"with PyTorch {torch.__version__} on {now}.*"
    )
