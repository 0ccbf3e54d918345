import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from resnext_lessons import complexity, models, train
from resnext_lessons.data import load_digits, make_loaders
from resnext_lessons.models import ResNeXt
from resnext_lessons.train import Recipe, build_model, fit, load_checkpoint, load_trained, main

ROOT = Path(__file__).resolve().parents[1]
SHORT = Recipe(lr=0.05, schedule="onecycle")


@pytest.fixture(scope="module")
def digits8():
    return load_digits(8)


@pytest.fixture(scope="module")
def loaders(digits8):
    return make_loaders(digits8, 64)


def tiny() -> ResNeXt:
    torch.manual_seed(0)
    return ResNeXt([1], cardinality=4, bottleneck_width=16, num_classes=10, stem="cifar")


def numbers(history):
    """A history without its timings, which differ from run to run."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


# ------------------------------------------------------------------------------ models by name
def test_one_registry_holds_the_papers_models_and_the_presets():
    assert set(models.MODEL_NAMES) | set(train.PRESETS) == set(train.MODELS)
    assert list(train.MODELS)[: len(models.MODEL_NAMES)] == list(models.MODEL_NAMES)
    with pytest.raises(ValueError, match="Did you mean 'resnext8_32x4d'"):
        build_model("resnext8_32x5d", 10)


@pytest.mark.parametrize("resnet, resnext, size", [("resnet8_1x64d", "resnext8_32x4d", 16),
                                                   ("resnet11_1x64d", "resnext11_32x4d", 32)])
def test_presets_are_pairs_of_matched_complexity(resnet, resnext, size):
    assert complexity.width_for_cardinality(32) == 4  # the paper's Table 2 width for C = 32
    a, b = build_model(resnet, 10), build_model(resnext, 10)
    assert (a.cardinality, a.bottleneck_width, b.cardinality, b.bottleneck_width) == (1, 64, 32, 4)
    pa, pb = complexity.count_params(a), complexity.count_params(b)
    fa, fb = (complexity.count_flops(m, (1, 3, size, size)) for m in (a, b))
    assert abs(pa - pb) / pa < 0.1 and abs(fa - fb) / fa < 0.1
    assert build_model(resnext, 100).fc.out_features == 100


def test_default_model_is_a_small_resnext_for_the_data():
    assert train.default_model("digits") == "resnext8_32x4d"
    assert train.default_model("cifar10") == "resnext11_32x4d"
    assert train.default_model("fashion-mnist") == "resnext14_8x4d"


def test_experiment_pair_is_registered_and_matched_within_two_percent():
    a, b = build_model("resnet14_1x24d", 10), build_model("resnext14_8x4d", 10)
    pa, pb = complexity.count_params(a), complexity.count_params(b)
    fa, fb = (complexity.count_flops(m, (1, 3, 14, 14)) for m in (a, b))
    assert abs(pb / pa - 1) < 0.02 and abs(fb / fa - 1) < 0.02


def test_cli_defaults_follow_the_data():
    assert train.DATA_DEFAULTS["cifar10"] == {"epochs": 300, "batch_size": 128, "lr": 0.1, "schedule": "step",
                                              "image_size": 32}  # the paper's recipe (Appendix A)
    for name in ("digits", "fashion-mnist"):
        assert train.DATA_DEFAULTS[name]["epochs"] <= 10 and train.DATA_DEFAULTS[name]["schedule"] == "onecycle"


def test_the_loop_and_the_command_line_are_apart():
    import ast
    from pathlib import Path

    import resnext_lessons

    package = Path(resnext_lessons.__file__).parent
    for name in ("loop", "train", "experiments", "data"):
        assert len((package / f"{name}.py").read_text().splitlines()) <= 500, name
    imported = {node.module for node in ast.walk(ast.parse((package / "loop.py").read_text()))
                if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert imported <= {"notebook"}  # the loop imports neither the command line nor the models
    for name in ("Recipe", "fit", "evaluate", "autocast_dtype", "epoch_seed", "seed_everything",
                 "save_checkpoint", "load_checkpoint", "load_trained", "main", "build_model"):
        assert hasattr(train, name), name  # the chapters and bench.py import these from train


# ------------------------------------------------------------------------------ the recipe
def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    opt = Recipe().optimizer(torch.nn.Linear(2, 2))
    sched = Recipe().scheduler(opt, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[49] == pytest.approx(0.1) and lrs[50] == pytest.approx(0.01)
    assert lrs[74] == pytest.approx(0.01) and lrs[75] == pytest.approx(0.001)
    group = opt.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)


def test_onecycle_and_cosine_end_near_zero():
    for schedule in ("onecycle", "cosine"):
        opt = Recipe(schedule=schedule).optimizer(torch.nn.Linear(2, 2))
        sched = Recipe(schedule=schedule).scheduler(opt, total_steps=50)
        peak = 0.0
        for _ in range(50):
            peak = max(peak, opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert peak == pytest.approx(0.1, rel=0.05) and opt.param_groups[0]["lr"] < 1e-3


def test_onecycle_keeps_the_recipes_momentum():
    # OneCycleLR cycles momentum (0.95 -> 0.85 -> 0.95) unless told not to: the recipe says 0.9.
    opt = Recipe(schedule="onecycle").optimizer(torch.nn.Linear(2, 2))
    sched = Recipe(schedule="onecycle").scheduler(opt, total_steps=20)
    momenta = []
    for _ in range(20):
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert set(momenta) == {0.9}


def test_precision_is_fp32_on_cpu_and_explicit_choices_are_checked():
    assert train.autocast_dtype("auto", torch.device("cpu")) is None
    assert train.autocast_dtype("fp32", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="'bf16' needs a GPU"):
        train.autocast_dtype("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="'fp8' is unknown"):
        train.autocast_dtype("fp8", torch.device("cpu"))


def test_recipe_rejects_unknown_schedules_and_bad_values():
    with pytest.raises(ValueError, match="'linear'"):
        Recipe(schedule="linear")
    with pytest.raises(ValueError, match="lr=-1"):
        Recipe(lr=-1)
    with pytest.raises(ValueError, match="label_smoothing=1.5"):
        Recipe(label_smoothing=1.5)


# ------------------------------------------------------------------------------ fit and evaluate
def test_fit_learns_digits_and_reports_each_epoch(loaders, capsys):
    history = fit(tiny(), *loaders, epochs=3, recipe=SHORT, seed=0, progress=False)
    assert capsys.readouterr() == ("", "")  # silent when asked
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2
    assert history[-1]["test_acc"] > 0.8  # chance is 0.1
    for row in history:
        assert 0 <= row["test_acc"] <= 1 and row["images"] == 1437 // 64 * 64 and row["images_per_s"] > 0


def test_fit_estimates_the_total_time_after_the_first_epoch(loaders, capsys):
    fit(tiny(), *loaders, epochs=2, recipe=SHORT, seed=0, progress=True)
    out = capsys.readouterr().out
    assert out.count("estimated total time") == 1 and "for the 2 epochs of this run" in out


def test_evaluate_counts_every_test_image(loaders):
    model = tiny()
    result = train.evaluate(model, loaders[1])
    assert result["images"] == 360
    x, y = loaders[1].dataset.tensors
    with torch.no_grad():
        expected = (model.eval()(x).argmax(1) == y).float().mean().item()
    assert result["acc"] == pytest.approx(expected)


def test_same_seed_same_run(loaders):
    first = fit(tiny(), *loaders, epochs=2, recipe=SHORT, seed=3, progress=False)
    second = fit(tiny(), *loaders, epochs=2, recipe=SHORT, seed=3, progress=False)
    assert numbers(first) == numbers(second)


class StopAtEpoch(DataLoader):
    """A loader that raises KeyboardInterrupt when iterated for the ``stop``-th time (Ctrl-C)."""

    def __init__(self, *args, stop: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop, self.passes = stop, 0

    def __iter__(self):
        self.passes += 1
        if self.passes == self.stop:
            raise KeyboardInterrupt
        return super().__iter__()


def test_interrupted_run_resumes_into_the_same_history(loaders, tmp_path):
    straight_out, broken_out = tmp_path / "straight", tmp_path / "broken"
    meta = {"model": "tiny"}
    straight = fit(tiny(), *loaders, epochs=3, recipe=SHORT, out=straight_out, meta=meta, progress=False)
    train_loader, test_loader = loaders
    stopping = StopAtEpoch(train_loader.dataset, 64, shuffle=True, drop_last=True, stop=3)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), stopping, test_loader, epochs=3, recipe=SHORT, out=broken_out, meta=meta, progress=False)
    saved = json.loads((broken_out / "history.json").read_text())
    assert [row["epoch"] for row in saved] == [1, 2]  # only the running epoch was lost
    resumed = fit(tiny(), *loaders, epochs=3, recipe=SHORT, out=broken_out, resume=True, meta=meta, progress=False)
    assert numbers(resumed) == numbers(straight)
    a, b = load_checkpoint(straight_out / "checkpoint.pt"), load_checkpoint(broken_out / "checkpoint.pt")
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key])
    assert not list(broken_out.glob("*.tmp"))


def test_resume_refuses_another_run(loaders, tmp_path):
    fit(tiny(), *loaders, epochs=1, recipe=SHORT, out=tmp_path, meta={"model": "tiny"}, progress=False)
    with pytest.raises(ValueError, match="epochs=1, not 2"):
        fit(tiny(), *loaders, epochs=2, recipe=SHORT, out=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="model='tiny', not 'other'"):
        fit(tiny(), *loaders, epochs=1, recipe=SHORT, out=tmp_path, resume=True, meta={"model": "other"}, progress=False)
    other = ResNeXt([1], cardinality=2, bottleneck_width=16, num_classes=10, stem="cifar")
    with pytest.raises(ValueError, match="another architecture"):
        fit(other, *loaders, epochs=1, recipe=SHORT, out=tmp_path, resume=True, progress=False)


# ------------------------------------------------------------------------------ checkpoints
def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    train.save_checkpoint(path, {"model": {"w": torch.ones(2)}, "history": [{"epoch": 1}]})

    def crash(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        train.save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "history": []})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))  # the old one is intact


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", "truncated"])
def test_unreadable_checkpoints_give_one_clear_error(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "truncated":
        torch.save({"model": {"w": torch.ones(1000)}, "history": []}, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)


class Payload:
    pass


def test_checkpoints_load_with_weights_only(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "history": [], "code": Payload()}, path)  # pickled code is refused
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_load_trained_rebuilds_the_model(loaders, tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet8_1x64d", 10)
    fit(model, *loaders, epochs=1, recipe=SHORT, out=tmp_path, progress=False,
        meta={"model": "resnet8_1x64d", "num_classes": 10})
    again, checkpoint = load_trained(tmp_path / "checkpoint.pt")
    x = loaders[1].dataset.tensors[0][:8]
    with torch.no_grad():
        torch.testing.assert_close(again(x), model.eval()(x))
    assert len(checkpoint["history"]) == 1


# ------------------------------------------------------------------------------ command line
def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_help_and_model_list(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0 and "--list-models" in help_text
    for default in ["cifar10 300", "digits 6", "fashion-mnist 5", "cifar10 step", "digits onecycle"]:
        assert default in help_text, default  # --help states each default, by dataset
    code, out, _ = run_cli(["--list-models"], capsys)
    assert code == 0 and out.split() == list(train.MODELS)


@pytest.mark.parametrize("args, expected", [
    (["--model", "resnext50_32x5d"], "Did you mean 'resnext50_32x4d'"),
    (["--data", "mnist"], "unknown dataset 'mnist'"),
    (["--data", "cifar10", "--image-size", "8"], "--image-size resizes the digits and Fashion-MNIST only"),
    (["--data", "digits", "--schedule", "linear"], "schedule='linear' is unknown"),
    (["--data", "digits", "--threads", "0"], "--threads 0 must be at least 1"),
    (["--data", "digits", "--device", "gpu0"], "--device 'gpu0' is not a device"),
    pytest.param(["--data", "digits", "--device", "cuda"], "torch sees no GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")),
])
def test_cli_bad_arguments_give_one_line(args, expected, capsys, tmp_path):
    code, _, err = run_cli([*args, "--out", str(tmp_path)], capsys)
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_checkpoints_give_one_line(capsys, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    base = ["--data", "digits", "--image-size", "8", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    code, _, err = run_cli(base, capsys)
    assert code == 2 and "pass --resume" in err and err.count("\n") == 1
    code, _, err = run_cli([*base, "--resume"], capsys)
    assert code == 2 and "not a readable checkpoint" in err and err.count("\n") == 1
    code, _, err = run_cli([*base[:-2], str(tmp_path / "new"), "--quiet", "--resume"], capsys)
    assert code == 2 and "drop --resume" in err and err.count("\n") == 1


CLI_RUN = ["--data", "digits", "--image-size", "8", "--model", "resnet8_1x64d", "--epochs", "2",
           "--batch-size", "64", "--lr", "0.05", "--schedule", "onecycle", "--quiet"]


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    assert main([*CLI_RUN, "--out", str(out)]) == 0
    return out


def test_cli_writes_history_and_checkpoint_and_resumes(one_process_run, capsys, tmp_path):
    history = json.loads((one_process_run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        assert {"epoch", "train_loss", "test_acc", "seconds"} <= set(row) and 0 <= row["test_acc"] <= 1
    assert history[-1]["test_acc"] > 0.8
    state = load_checkpoint(one_process_run / "checkpoint.pt")
    assert state["meta"]["model"] == "resnet8_1x64d" and state["meta"]["data"] == "digits"
    # --resume of a finished run trains nothing and keeps the history
    shutil.copytree(one_process_run, tmp_path / "copy")
    code, _, _ = run_cli([*CLI_RUN, "--out", str(tmp_path / "copy"), "--resume"], capsys)
    assert code == 0 and json.loads((tmp_path / "copy" / "history.json").read_text()) == history
    other = [("resnext8_32x4d" if arg == "resnet8_1x64d" else arg) for arg in CLI_RUN]
    code, _, err = run_cli([*other, "--out", str(tmp_path / "copy"), "--resume"], capsys)
    assert code == 2 and "model='resnet8_1x64d', not 'resnext8_32x4d'" in err


def test_torchrun_two_processes_train_like_one(one_process_run, tmp_path):
    """A 2-process gloo job on CPU: each process sees half of every batch, and together they
    train as the 1-process run does (same images per epoch, similar accuracy)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "resnext_lessons.train", *CLI_RUN[:-1], "--out", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("resnet8_1x64d on digits") == 1  # only rank 0 logs
    assert "2 process(es)" in result.stdout
    two = json.loads((tmp_path / "history.json").read_text())
    one = json.loads((one_process_run / "history.json").read_text())
    assert [r["images"] for r in two] == [r["images"] for r in one]  # the same images per epoch
    assert two[-1]["train_loss"] < two[0]["train_loss"] and two[-1]["test_acc"] > 0.8
    assert abs(two[-1]["test_acc"] - one[-1]["test_acc"]) < 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "history.json"]
