"""Tests for resnext_lessons.notebook: device choice, sizes, and the page footer."""

import re
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from resnext_lessons import notebook
from resnext_lessons.notebook import by_device, device_name, footer, in_colab, pick_device

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


def test_in_colab_follows_the_google_colab_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert in_colab() is True


@needs_no_gpu
def test_pick_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.delenv("RESNEXT_REQUIRE_GPU", raising=False)
    assert pick_device() == torch.device("cpu")


@needs_no_gpu
@pytest.mark.parametrize("value", ["", "0"])
def test_pick_device_only_requires_a_gpu_when_asked(monkeypatch, value):
    monkeypatch.setenv("RESNEXT_REQUIRE_GPU", value)
    assert pick_device() == torch.device("cpu")


@needs_no_gpu
def test_require_gpu_raises_without_cuda(monkeypatch):
    monkeypatch.setenv("RESNEXT_REQUIRE_GPU", "1")
    with pytest.raises(RuntimeError, match="RESNEXT_REQUIRE_GPU=1.*Unset RESNEXT_REQUIRE_GPU"):
        pick_device()


def test_pick_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("RESNEXT_REQUIRE_GPU", "1")
    assert pick_device() == torch.device("cuda")


@pytest.mark.parametrize(
    "device, expected",
    [("cpu", "quick"), (torch.device("cpu"), "quick"), ("cuda", "full"), ("cuda:1", "full")],
)
def test_by_device_picks_the_size_for_the_device_type(device, expected):
    assert by_device(device, cpu="quick", cuda="full") == expected


def test_by_device_returns_the_value_itself():
    sizes = {"batch": 8}
    assert by_device("cpu", cpu=sizes, cuda={"batch": 256}) is sizes


def test_cpu_device_name_names_the_cpu(monkeypatch):
    monkeypatch.setattr(notebook, "_cpu_model", lambda: "Example CPU 9000")
    assert device_name(torch.device("cpu")).startswith("Example CPU 9000 (")
    assert "logical cores" in device_name("cpu")


def test_cpu_device_name_in_korean_counts_the_same_cores(monkeypatch):
    monkeypatch.setattr(notebook, "_cpu_model", lambda: "Example CPU 9000")
    monkeypatch.setattr(notebook.os, "cpu_count", lambda: 6)
    assert device_name("cpu") == "Example CPU 9000 (6 logical cores)"
    assert device_name("cpu", "ko") == "Example CPU 9000 (논리 코어 6개)"
    with pytest.raises(ValueError, match="language='fr'"):
        device_name("cpu", "fr")


def test_glue_prose_needs_both_languages():
    with pytest.raises(ValueError, match="both the English and the Korean"):
        notebook.glue_prose("phrase", "less", "")
    with pytest.raises(ValueError, match="both the English and the Korean"):
        notebook.glue_prose("phrase", "", "덜")
    notebook.glue_prose("phrase", "", "")  # nothing to say, in either language


def test_cuda_device_name_asks_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Example")
    assert device_name(torch.device("cuda")) == "NVIDIA Example"


def test_real_cpu_name_is_not_empty():
    assert notebook._cpu_model().strip()


def test_footer_states_device_torch_version_and_utc_time():
    text = footer(torch.device("cpu")).data
    assert device_name("cpu") in text
    assert "`cpu`" in text
    assert f"PyTorch {torch.__version__}" in text
    stamp = re.search(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC", text)
    assert stamp, text
    when = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 120


@pytest.mark.parametrize("value", [np.float64(0.672), torch.tensor(0.672, dtype=torch.float64)])
def test_glue_hands_myst_nb_plain_python_numbers(monkeypatch, value):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, v, display=True: seen.update({name: v}))
    notebook.glue("x", value, display=False)
    assert type(seen["x"]) is float and seen["x"] == pytest.approx(0.672)


def test_resolve_device_names_and_errors():
    assert notebook.resolve_device("cpu") == torch.device("cpu")
    assert notebook.resolve_device(None) == notebook.resolve_device("auto") == pick_device()
    with pytest.raises(ValueError, match="'gpu0' is not a device; use cpu, cuda or auto"):
        notebook.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no GPU here"):
            notebook.resolve_device("cuda")
