"""Tests for resnext_lessons.measure: the roofline arithmetic and the bootstrap interval.

Exact arithmetic is asserted exactly; the bootstrap against what statistics says a median's
spread must be. No speed is asserted here.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from resnext_lessons import bench, measure
from resnext_lessons.complexity import conv_macs

PACKAGE = Path(measure.__file__).parent


def test_conv_intensity_is_twice_macs_over_bytes():
    # ResNeXt-50's conv3 grouped 3x3 at batch 64, fp32: about 18 FLOP per byte
    macs = 64 * conv_macs(256, 256, 3, 28, groups=32)
    moved = measure.conv_bytes(64, 256, 256, 28, 3, 32, element_bytes=4)
    assert moved == 4 * (2 * 64 * 256 * 28 * 28 + 256 * 8 * 9)
    assert measure.conv_intensity(64, 256, 256, 28, 3, 32, 4) == 2 * macs / moved
    assert 17.9 < measure.conv_intensity(64, 256, 256, 28, 3, 32, 4) < 18.1
    # stride 2 quarters the output positions, hence the multiply-adds
    strided = measure.conv_intensity(1, 8, 8, 4, 3, 2, element_bytes=4, stride=2)
    assert strided == 2 * conv_macs(8, 8, 3, 2, groups=2) / ((128 + 288 + 32) * 4)


def test_ridge_point_and_roofline_meet_at_the_ridge():
    peak = {"flops_per_s": 20e12, "bandwidth_bytes_per_s": 2e12}
    ridge = measure.ridge_point(peak["flops_per_s"], peak["bandwidth_bytes_per_s"])
    assert ridge == 10
    assert measure.attainable_flops_per_s(ridge, peak) == peak["flops_per_s"]
    assert measure.attainable_flops_per_s(ridge / 2, peak) == peak["flops_per_s"] / 2
    assert measure.attainable_flops_per_s(ridge * 5, peak) == peak["flops_per_s"]


def test_spec_sheet_ridges_are_the_published_ratios():
    a100, h100 = measure.SPEC_SHEET_GPUS["A100 SXM 80GB"], measure.SPEC_SHEET_GPUS["H100 SXM"]
    fp32 = [measure.ridge_point(g["fp32_flops_per_s"], g["bandwidth_bytes_per_s"]) for g in (a100, h100)]
    assert fp32 == pytest.approx([19.5 / 2.039, 67 / 3.35])  # about 9.6 and 20 FLOP/byte
    # the datasheets' dense TF32 tensor-core figures (H100: 989 "with sparsity", halved)
    assert (a100["tf32_flops_per_s"], h100["tf32_flops_per_s"]) == (156e12, 989e12 / 2)
    assert (a100["bandwidth_bytes_per_s"], h100["bandwidth_bytes_per_s"]) == (2039e9, 3.35e12)
    for gpu in (a100, h100):
        assert gpu["tf32_flops_per_s"] > gpu["fp32_flops_per_s"]  # tensor cores: a higher roof
        assert gpu["source"] in (PACKAGE.parent / "book" / "references.bib").read_text()



def _numbers(text):
    import re

    return sorted(re.findall(r"\d+(?:[.,]\d+)*", text))


def test_korean_fp32_policies_say_the_same_with_the_same_flags():
    assert measure.FP32_POLICIES_KO.keys() == measure.FP32_POLICIES.keys()
    for key, english in measure.FP32_POLICIES.items():
        korean = measure.FP32_POLICIES_KO[key]
        assert _numbers(korean) == _numbers(english), key  # the numbers a page checks
        # the flags in parentheses are code, the same in both; "name: meaning" in both
        assert korean[korean.index("("):] == english[english.index("("):], key
        assert korean.count(":") == english.count(":") <= 1, key
    # chapter 10 pastes the policy's name, the part before the colon
    assert measure.FP32_POLICIES["strict"].split(":")[0] == "strict fp32"
    assert measure.FP32_POLICIES_KO["strict"].split(":")[0] == "엄격한 fp32"
    assert measure.FP32_POLICIES_KO["defaults"].split(":")[0] == "PyTorch 기본값"
    assert "TF32를 쓰지 않음" in measure.FP32_POLICIES_KO["strict"]
    assert "TF32 허용" in measure.FP32_POLICIES_KO["tf32"]

def test_bootstrap_interval_is_the_percentiles_of_resampled_medians():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0]
    low, high = measure.bootstrap_interval(values, level=0.9, resamples=4000, seed=1)
    rng = np.random.default_rng(1)
    medians = np.median(np.asarray(values)[rng.integers(0, 10, size=(4000, 10))], axis=1)
    assert (low, high) == tuple(np.quantile(medians, [0.05, 0.95]))
    assert measure.bootstrap_interval(values, seed=3) == measure.bootstrap_interval(values, seed=3)
    assert high < 10  # a median's interval ignores one outlier; a mean's would not
    assert measure.bootstrap_interval([2.5] * 7) == (2.5, 2.5)


def test_bootstrap_interval_has_the_width_statistics_predicts():
    # The median of n normal draws has standard error sqrt(pi / 2) * sigma / sqrt(n).
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 0.1, size=400)
    low, high = measure.bootstrap_interval(values, level=0.95)
    expected = 2 * 1.96 * math.sqrt(math.pi / 2) * 0.1 / math.sqrt(400)
    assert 0.7 * expected < high - low < 1.3 * expected
    assert low < 1.0 < high
    narrower = measure.bootstrap_interval(values, level=0.5)
    assert low < narrower[0] < narrower[1] < high


@pytest.mark.parametrize("values, level", [([1.0], 0.95), ([1.0, 2.0], 1.0), ([1.0, 2.0], 0)])
def test_bootstrap_interval_rejects_what_it_cannot_do(values, level):
    with pytest.raises(ValueError, match="level|at least 2"):
        measure.bootstrap_interval(values, level=level)


def test_bench_re_exports_the_primitives():
    for name in ("time_interleaved", "measure_peak", "conv_bytes", "attainable_flops_per_s",
                 "time_exponent", "bootstrap_interval", "gpu_flags", "conv_intensity",
                 "FP32_POLICIES", "FP32_POLICIES_KO"):
        assert getattr(bench, name) is getattr(measure, name)


def _imports(path: Path) -> set[str]:
    """The package modules a module imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = path.parent.relative_to(PACKAGE).parts[: len(path.parent.relative_to(PACKAGE).parts) - node.level + 1]
            names.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return names


def test_the_roofline_arithmetic_imports_neither_the_suite_nor_the_figures():
    measured = _imports(PACKAGE / "measure.py")
    assert not {name for name in measured if name.startswith(("bench", "throughput", "viz"))}
    assert not {n for n in _imports(PACKAGE / "throughput.py") if n.startswith(("bench", "viz"))}
    assert "measure" in _imports(PACKAGE / "viz" / "roofline.py")
    assert not {n for n in _imports(PACKAGE / "viz" / "roofline.py") if n.startswith("bench")}


@pytest.mark.parametrize("module", ["bench.py", "measure.py", "throughput.py", "viz/roofline.py"])
def test_modules_stay_readable(module):
    assert len((PACKAGE / module).read_text().splitlines()) <= 500


def test_native_stderr_silenced_hides_descriptor_2_and_restores_it(capfd):
    import os

    os.write(2, b"before\n")
    with measure.native_stderr_silenced():
        os.write(2, b"hidden\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"
    assert bench.native_stderr_silenced is measure.native_stderr_silenced
