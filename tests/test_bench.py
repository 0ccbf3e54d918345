"""Tests for resnext_lessons.bench: the timing logic, the sweep's figures, the CLI.

Speeds are never asserted (a shared CPU is noisy); what is asserted is exact arithmetic
(multiply-adds, bytes, intensity), the shape of the JSON, and how timing is organised.
"""

import json
import statistics
import subprocess
import sys

import pytest
import torch

from resnext_lessons import bench, measure, notebook, throughput
from resnext_lessons.bench import (
    BenchConfig,
    conv_bytes,
    default_groups,
    main,
    parse_setting,
    time_interleaved,
)
from resnext_lessons.complexity import conv_macs
from resnext_lessons.models import ResNeXt
from torchvision.models import resnet as tv_resnet

TINY_SWEEP = ["--parts", "sweep", "--channels", "16", "--size", "8", "--sweep-batch", "2",
              "--groups", "1", "2", "4", "16", "--warmup", "1", "--repeats", "2", "--min-sample-s", "0"]


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "resnext_lessons.bench", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in ("--json", "--plot", "--groups", "--settings", "--device", "--repeats"):
        assert option in out.stdout


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    assert main([*TINY_SWEEP, "--json", str(folder / "sweep.json"), "--plot", str(folder / "roofline.png")]) == 0
    return folder


@pytest.fixture(scope="module")
def tiny_sweep(tiny_run):
    return json.loads((tiny_run / "sweep.json").read_text())


def test_plot_is_written_and_draws_the_roof_and_both_layouts(tiny_run, tiny_sweep):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import plot_roofline

    assert (tiny_run / "roofline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = BenchConfig(**{**tiny_sweep["config"], "groups": tuple(tiny_sweep["config"]["groups"])})
    fig = plot_roofline(tiny_sweep["peak"], tiny_sweep["sweep"], config, "test device")
    ax = fig.axes[0]
    roof = ax.get_lines()[0].get_ydata()
    assert max(roof) == pytest.approx(tiny_sweep["peak"]["flops_per_s"])  # flat at the measured peak
    assert [c.get_label() for c in ax.collections] == ["nchw", "channels_last"]
    assert [len(c.get_offsets()) for c in ax.collections] == [4, 4]
    assert ax.get_xscale() == ax.get_yscale() == "log" and "test device" in ax.get_title()
    plt.close(fig)


def test_json_names_the_device_and_versions(tiny_sweep):
    assert tiny_sweep["device"] == notebook.pick_device().type
    assert tiny_sweep["device_name"] and tiny_sweep["torch_version"] == torch.__version__
    assert "ours_vs_torchvision" in tiny_sweep and tiny_sweep["ours_vs_torchvision"] is None  # models not run
    assert tiny_sweep["ours_vs_torchvision_interval"] is None and tiny_sweep["fp32_policy"]
    assert tiny_sweep["sweep_time_exponent"] == pytest.approx(bench.time_exponent(tiny_sweep["sweep"]))
    assert tiny_sweep["config"]["groups"] == [1, 2, 4, 16]
    peak = tiny_sweep["peak"]
    assert peak["flops_per_s"] == pytest.approx(2 * peak["macs_per_s"])
    assert peak["ridge_flops_per_byte"] == pytest.approx(peak["flops_per_s"] / peak["bandwidth_bytes_per_s"])


def test_sweep_rows_are_exact_where_arithmetic_decides(tiny_sweep):
    rows = tiny_sweep["sweep"]
    assert [(r["groups"], r["memory_format"]) for r in rows] == [
        (g, f) for g in (1, 2, 4, 16) for f in ("nchw", "channels_last")
    ]
    for r in rows:
        g = r["groups"]
        assert r["macs"] == 2 * 16 * (16 // g) * 9 * 8 * 8  # batch x C_out x C_in/g x k^2 x H x W
        assert r["macs"] == 2 * conv_macs(16, 16, 3, 8, g)
        assert r["mac_reduction"] == g  # exactly the groups factor
        assert r["flops_per_byte"] == pytest.approx(2 * r["macs"] / r["bytes"])
        assert r["time_s"] == statistics.median(r["times_s"]) > 0
        assert r["macs_per_s"] == pytest.approx(r["macs"] / r["time_s"])
    for fmt in ("nchw", "channels_last"):
        intensity = [r["flops_per_byte"] for r in rows if r["memory_format"] == fmt]
        assert all(a > b for a, b in zip(intensity, intensity[1:])), intensity


def test_time_exponent_fits_time_against_multiply_adds():
    # time = macs**0.5 in the faster layout; the slower layout must be ignored
    rows = [{"groups": g, "macs": 1024 // g, "time_s": (1024 / g) ** 0.5, "memory_format": "nchw"} for g in (1, 2, 4, 8)]
    rows += [{**r, "time_s": 3 * r["time_s"] * r["groups"], "memory_format": "channels_last"} for r in rows]
    assert bench.time_exponent(rows) == pytest.approx(0.5)
    assert bench.time_exponent([{**r, "time_s": r["macs"] * 1e-9} for r in rows]) == pytest.approx(1.0)


def test_conv_bytes_counts_input_weights_output_once():
    # batch 1, 8 -> 8 channels, 4x4, groups 2: input 128 + weights 8*4*9 = 288 + output 128 elements
    assert conv_bytes(1, 8, 8, 4, 3, 2, element_bytes=4) == (128 + 288 + 128) * 4
    # stride 2 shrinks only the output: 2x2 positions
    assert conv_bytes(1, 8, 8, 4, 3, 2, element_bytes=2, stride=2) == (128 + 288 + 32) * 2


def test_default_groups_run_from_dense_to_depthwise():
    assert default_groups(256) == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert default_groups(96) == (1, 2, 4, 8, 16, 32, 96)
    assert BenchConfig().channels == 256  # ResNeXt-50's conv3 grouped 3x3


@pytest.mark.parametrize(
    "name, precision, cl, compiled",
    [("fp32", "fp32", False, False), ("bf16-cl", "bf16", True, False), ("fp16-cl-compile", "fp16", True, True),
     ("fp32-compile", "fp32", False, True), ("tf32-cl", "tf32", True, False)],
)
def test_parse_setting(name, precision, cl, compiled):
    s = parse_setting(name)
    assert (s.precision, s.channels_last, s.compile) == (precision, cl, compiled)
    assert s.autocast_dtype == (None if precision in ("fp32", "tf32") else bench.PRECISIONS[precision])
    assert s.tf32 == (precision == "tf32")  # only tf32 lets cuDNN and matmuls use TF32


def test_every_mode_has_a_korean_name():
    assert throughput.MODE_NAMES_KO == {"inference": "추론", "train": "학습"}
    assert tuple(throughput.MODE_NAMES_KO) == throughput.MODES  # one per mode, same order
    assert bench.MODE_NAMES_KO is throughput.MODE_NAMES_KO

@pytest.mark.parametrize("name", ["fp64", "bf16-cl-cl", "bf16-fast", ""])
def test_parse_setting_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="precision\\[-cl\\]\\[-compile\\]"):
        parse_setting(name)


def test_time_interleaved_alternates_order_and_warms_up():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = time_interleaved(fns, "cpu", warmup=2, repeats=3, min_sample_s=0.0)
    assert calls == list("aabbcc") + list("abc") + list("cba") + list("bca")
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3, "c": 3}
    # Over six rounds every order of three occurs once: each takes each place twice.
    calls.clear()
    time_interleaved(fns, "cpu", warmup=0, repeats=6, min_sample_s=0.0)
    rounds = ["".join(calls[i:i + 3]) for i in range(0, 18, 3)]
    assert sorted(rounds) == ["abc", "acb", "bac", "bca", "cab", "cba"]


def test_time_interleaved_repeats_short_calls_within_a_sample(monkeypatch):
    clock = [0.0]  # a fake clock: each call takes exactly 1 ms
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    calls = []

    def short():
        calls.append(1)
        clock[0] += 0.001

    samples = time_interleaved({"short": short}, "cpu", warmup=1, repeats=2, min_sample_s=0.005)
    assert len(calls) == 1 + 2 * 5  # one warm-up call, then 5 calls per 5 ms sample
    assert samples["short"] == pytest.approx([0.001, 0.001])  # still seconds per call


def test_gpu_flags_set_and_restore_backend_flags():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
    with bench.gpu_flags(torch.device("cuda"), tf32=False):
        assert cudnn.benchmark is True and cudnn.allow_tf32 is False and matmul.allow_tf32 is False
    assert (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32) == before
    with bench.gpu_flags(torch.device("cuda"), tf32=True, benchmark=False):
        assert cudnn.benchmark is False and cudnn.allow_tf32 is True and matmul.allow_tf32 is True
    assert (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32) == before
    with bench.gpu_flags(torch.device("cpu"), tf32=False):
        assert (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32) == before


@pytest.mark.parametrize("capability, memory_gib, amp, batch", [((9, 0), 80, "bf16", 128), ((7, 5), 15, "fp16", 32)])
def test_gpu_defaults(monkeypatch, capability, memory_gib, amp, batch):
    """An H100-like and a T4-like GPU, without a GPU: bf16 only where it is native."""

    class Props:
        total_memory = memory_gib * 2**30

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: capability)
    config = BenchConfig.for_device("cuda")
    assert config.settings == ("fp32", amp, f"{amp}-cl", f"{amp}-cl-compile")
    assert config.batch == batch and config.repeats > BenchConfig().repeats
    assert BenchConfig.for_device("cuda", batch=8).batch == 8


def one_error_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--channels", "8", "--groups", "3"], ["groups=3", "divisors of 8"]),
        (["--settings", "fp64"], ["fp64", "precision[-cl][-compile]"]),
        (["--repeats", "0"], ["repeats=0"]),
        (["--image-size", "16"], ["image_size=16", "at least 32"]),
        (["--modes", "eval"], ["invalid choice", "eval"]),
        (["--batch", "two"], ["invalid int value", "two"]),
        (["--json", "/no/such/folder/out.json"], ["/no/such/folder", "does not exist"]),
        (["--parts", "models", "--plot", "roofline.png"], ["--plot", "sweep"]),
    ],
)
def test_bad_arguments_give_one_clear_line(capsys, argv, words):
    line = one_error_line(capsys, argv)
    assert line.startswith("python -m resnext_lessons.bench: error:")
    for word in words:
        assert word in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    assert "torch.cuda.is_available() is False" in one_error_line(capsys, ["--device", "cuda"])


def test_models_and_a_failing_compile(monkeypatch, capsys):
    """Throughput rows for every model, the ratio, and a compile failure recorded, not raised."""

    def broken_compile(model, **kwargs):
        def run(x):
            raise RuntimeError("no C++ compiler\nmore detail")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    # One block per stage keeps this quick; the code path is the 50-layer one's.
    monkeypatch.setattr(throughput.models, "resnet50", lambda: ResNeXt([1, 1, 1, 1]))
    monkeypatch.setattr(throughput.models, "resnext50_32x4d", lambda: ResNeXt([1, 1, 1, 1], 32, 4))
    monkeypatch.setattr(throughput.torchvision.models, "resnext50_32x4d",
                        lambda: tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4))
    config = BenchConfig(batch=2, image_size=32, settings=("fp32", "fp32-compile"), warmup=0, repeats=3, min_sample_s=0)
    result = bench.run_benchmarks(config, "cpu", parts=("models",))
    rows = result["throughput"]
    assert {(r["model"], r["implementation"], r["mode"]) for r in rows} == {
        (m, i, mode) for m, i in [("resnet50", "ours"), ("resnext50_32x4d", "ours"), ("resnext50_32x4d", "torchvision")]
        for mode in ("inference", "train")
    }
    for r in rows:
        assert r["setting"] == "fp32" and r["images_per_s"] == pytest.approx(2 / r["time_s"])
    assert [(r["setting"], r["mode"]) for r in result["ours_vs_torchvision_by_setting"]] == [
        ("fp32", "inference"), ("fp32", "train")
    ]
    assert result["ours_vs_torchvision"] == min(r["ours_vs_torchvision"] for r in result["ours_vs_torchvision_by_setting"])
    assert result["ours_vs_torchvision"] > 0
    for r in result["ours_vs_torchvision_by_setting"]:
        # the point is the median of the paired rounds, and its interval brackets it
        assert len(r["per_round"]) == 3
        assert r["ours_vs_torchvision"] == statistics.median(r["per_round"])
        assert min(r["per_round"]) <= r["ci_low"] <= r["ours_vs_torchvision"] <= r["ci_high"] <= max(r["per_round"])
        assert (r["ci_low"], r["ci_high"]) == bench.bootstrap_interval(r["per_round"], 0.95, 2000)
    interval = result["ours_vs_torchvision_interval"]
    lowest = min(result["ours_vs_torchvision_by_setting"], key=lambda r: r["ours_vs_torchvision"])
    assert (interval["low"], interval["high"]) == (lowest["ci_low"], lowest["ci_high"])
    assert (interval["setting"], interval["mode"], interval["rounds"]) == (lowest["setting"], lowest["mode"], 3)
    assert interval["level"] == 0.95 and "percentile bootstrap" in interval["method"]
    json.dumps(result)  # JSON-ready
    assert result["skipped"] == [
        {"setting": "fp32-compile", "mode": m, "reason": "RuntimeError: no C++ compiler"} for m in ("inference", "train")
    ]
    report = bench.format_report(result)
    assert "resnext50_32x4d (torchvision)" in report and "Skipped fp32-compile" in report
    assert "95% interval" in report and f"[{lowest['ci_low']:.3f}, {lowest['ci_high']:.3f}]" in report


def test_reference_roofline_draws_each_datasheet_roof_and_the_layers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import reference_roofline_figure

    fig = reference_roofline_figure([("groups=32", 18.0)])
    ax = fig.axes[0]
    roofs = {line.get_label(): max(line.get_ydata()) for line in ax.get_lines()
             if not line.get_label().startswith("_")}
    expected = {f"{name}, {label}": spec[key] for name, spec in bench.SPEC_SHEET_GPUS.items()
                for key, label in (("fp32_flops_per_s", "fp32"), ("tf32_flops_per_s", "TF32"))}
    assert roofs == pytest.approx(expected)  # each roof flat at its datasheet peak
    assert any(list(line.get_xdata()) == [18.0, 18.0] for line in ax.get_lines())  # the layer
    assert "not measured" in ax.get_title()
    plt.close(fig)
