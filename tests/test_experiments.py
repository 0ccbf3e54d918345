import json
import math
import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from scipy import stats

from resnext_lessons import complexity
from resnext_lessons import experiments as ex


# ------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("name", sorted(ex.PRESETS))
def test_presets_are_matched_pairs_found_by_the_search(name):
    config = ex.PRESETS[name]
    resnet_width, width, gaps = ex.match_pair(config.layers, config.image_size, config.cardinality)
    assert (resnet_width, width) == (config.resnet_width, config.width)
    assert abs(gaps["params"]) < 0.02 and abs(gaps["macs"]) < 0.02
    pair = ex.build_pair(config, 0)  # the closed form agrees with counting the built networks
    shape = (1, 3, config.image_size, config.image_size)
    p0, p1 = (complexity.count_params(pair[k]) for k in ex.MODEL_KEYS)
    m0, m1 = (complexity.count_flops(pair[k], shape) for k in ex.MODEL_KEYS)
    assert math.isclose(p1 / p0 - 1, gaps["params"]) and math.isclose(m1 / m0 - 1, gaps["macs"])
    assert pair["resnext"].layer1[0].conv2.groups == config.cardinality
    assert len(config.seeds) >= 3


def test_table2_rule_alone_would_not_match_these_short_networks():
    # Why the search: with C = 32 and Table 2's d = 4 against ResNet's 1x64d, the short pair
    # differs by more than 2% in parameters, because most blocks are a stage's first block.
    gaps = ex.complexity_gaps((2, 2), 64, 32, complexity.width_for_cardinality(32), 14)
    assert abs(gaps["params"]) > 0.02


def test_config_hash_changes_with_any_field():
    config = ex.PRESETS["cpu-small"]
    assert ex.config_hash(config) == ex.config_hash(replace(config))
    assert len(ex.config_hash(config)) == 12
    assert ex.config_hash(replace(config, epochs=config.epochs + 1)) != ex.config_hash(config)
    assert ex.config_hash(replace(config, seeds=(0, 1, 3))) != ex.config_hash(config)
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        replace(config, seeds=(0,))


def test_committed_results_match_the_presets_of_the_same_name():
    """A result written by an older preset is stale: change the preset, rerun the experiment."""
    for path in sorted(ex.RESULTS_DIR.glob("*.json")):
        result = json.loads(path.read_text())
        name = result["preset"]
        assert name in ex.PRESETS and path.stem == name, path
        assert result["config"] == json.loads(json.dumps(asdict(ex.PRESETS[name]))), f"{path} is stale"
        assert result["config_hash"] == ex.config_hash(ex.PRESETS[name]), f"{path} is stale"
        seeds = ex.PRESETS[name].seeds
        if result["complete"]:
            assert sorted((r["model"], r["seed"]) for r in result["runs"]) == sorted(
                (k, s) for k in ex.MODEL_KEYS for s in seeds)
            assert (ex.RESULTS_DIR / result["checkpoint"]).stat().st_size < 8e6  # a few MB at most


# ------------------------------------------------------------------------------ statistics
def test_summarize_gives_mean_sample_std_and_n():
    s = ex.summarize({"resnet": [0.80, 0.82, 0.84], "resnext": [0.9, 0.9]})
    assert s["resnet"]["mean"] == pytest.approx(0.82) and s["resnet"]["std"] == pytest.approx(0.02)
    assert s["resnet"]["n"] == 3 and s["resnext"]["std"] == 0


def test_detectable_difference_is_the_documented_formula():
    got = ex.detectable_difference(5000, 0.01, 3, accuracy=0.9)
    t = stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)
    assert got == pytest.approx(t * math.sqrt(2 * (0.01**2 / 3 + 0.9 * 0.1 / 5000)))
    # more seeds, more test images or less spread: a smaller detectable difference
    assert ex.detectable_difference(5000, 0.01, 10, accuracy=0.9) < got
    assert ex.detectable_difference(50_000, 0.01, 3, accuracy=0.9) < got
    assert ex.detectable_difference(5000, 0.001, 3, accuracy=0.9) < got
    # with no spread and a huge test set it goes to zero; a perfect score has no binomial noise
    assert ex.detectable_difference(10**9, 0.0, 3, accuracy=0.9) < 1e-3
    assert ex.detectable_difference(100, 0.0, 3, accuracy=1.0) == 0
    with pytest.raises(ValueError, match="n_seeds >= 2"):
        ex.detectable_difference(100, 0.01, 1, accuracy=0.9)


def test_verdict_follows_the_numbers():
    close = ex.summarize({"resnet": [0.850, 0.860, 0.855], "resnext": [0.852, 0.858, 0.857]})
    assert ex.verdict(close, 4000).startswith("cannot tell apart at this scale")
    far = ex.summarize({"resnet": [0.850, 0.851, 0.852], "resnext": [0.900, 0.901, 0.902]})
    assert ex.verdict(far, 4000).startswith("ResNeXt ahead by 5.00 points")
    behind = ex.summarize({"resnet": [0.900, 0.901, 0.902], "resnext": [0.850, 0.851, 0.852]})
    assert ex.verdict(behind, 4000).startswith("ResNet ahead by 5.00 points")


def test_verdict_in_korean_follows_the_same_numbers():
    close = ex.summarize({"resnet": [0.850, 0.860, 0.855], "resnext": [0.852, 0.858, 0.857]})
    english, korean = ex.verdict(close, 4000), ex.verdict(close, 4000, language="ko")
    assert english == ex.verdict(close, 4000, language="en")
    assert korean.startswith("두 평균의 차이 0.07포인트가 시드 3개, 테스트 이미지 4,000장의 잡음 임계값 ")
    assert korean.endswith("포인트 안에 있어, 이 규모에서는 두 모델을 구별할 수 없습니다")
    far = ex.summarize({"resnet": [0.850, 0.851, 0.852], "resnext": [0.900, 0.901, 0.902]})
    assert ex.verdict(far, 4000, language="ko").endswith("를 넘으므로, 테스트 정확도에서 ResNeXt가 앞섭니다")
    behind = ex.summarize({"resnet": [0.900, 0.901, 0.902], "resnext": [0.850, 0.851, 0.852]})
    assert ex.verdict(behind, 4000, language="ko").endswith("테스트 정확도에서 ResNet이 앞섭니다")
    number = re.compile(r"\d[\d,]*(?:\.\d+)?")
    for summary in (close, far, behind):  # the same numbers, formatted the same way
        english, korean = ex.verdict(summary, 4000), ex.verdict(summary, 4000, language="ko")
        assert sorted(number.findall(english)) == sorted(number.findall(korean))
    with pytest.raises(ValueError, match="language"):
        ex.verdict(close, 4000, language="fr")


# ------------------------------------------------------------------------------ a run
TINY = ex.ExperimentConfig(
    name="tiny", data="digits", image_size=8, train_size=None, test_size=None, layers=(1, 1),
    resnet_width=24, cardinality=8, width=4, epochs=1, batch_size=128, seeds=(0, 1), lr=0.05,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return ex.run_experiment(TINY, device="cpu", out=out), out


def test_run_writes_every_history_with_provenance(tiny_run):
    result, out = tiny_run
    saved = ex.load_result(out / "tiny.json")
    assert saved["complete"] and saved["config_hash"] == ex.config_hash(TINY)
    for key in ["device", "device_name", "torch_version", "git_commit", "wall_seconds", "started_utc",
                "data", "models", "complexity_gaps", "summary", "detectable_difference", "verdict"]:
        assert key in saved, key
    assert saved["torch_version"] == torch.__version__ and saved["data"]["name"] == "digits"
    assert [(r["model"], r["seed"]) for r in saved["runs"]] == [
        ("resnet", 0), ("resnext", 0), ("resnet", 1), ("resnext", 1)]
    accs = ex.final_accuracies(saved)
    assert saved["summary"]["resnext"]["mean"] == pytest.approx(sum(accs["resnext"]) / 2)
    assert saved["verdict"] == ex.verdict(saved["summary"], saved["data"]["test_images"])


def test_the_checkpoint_rebuilds_the_best_run_of_each_model(tiny_run):
    result, out = tiny_run
    models = ex.load_models(out / "tiny.pt")
    accs = ex.final_accuracies(result)
    for key, (model, info) in models.items():
        assert info["test_acc"] == max(accs[key]) and not model.training
        assert info["name"] == TINY.model_names()[key]
    assert models["resnext"][0].layer1[0].conv2.groups == TINY.cardinality


def test_missing_results_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "RESULTS_CACHE", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="--preset no-such-run"):
        ex.load_result("no-such-run", download=False)
    with pytest.raises(FileNotFoundError, match="--preset no-such-run"):
        ex.load_models("no-such-run", download=False)

    def offline(url, timeout):
        raise OSError("no network in this test")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(FileNotFoundError, match="no-such-run.json \\(OSError\\)"):
        ex.load_result("no-such-run")


def test_results_are_downloaded_where_the_book_is_not_checked_out(tiny_run, tmp_path, monkeypatch):
    _, out = tiny_run
    monkeypatch.setattr(ex, "RESULTS_DIR", tmp_path / "no-checkout")
    monkeypatch.setattr(ex, "RESULTS_CACHE", tmp_path / "cache")
    asked = []

    class Response:
        def __init__(self, url):
            self.payload = (out / url.rsplit("/", 1)[1]).read_bytes()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return self.payload

    def serve(url, timeout):
        asked.append(url)
        return Response(url)

    monkeypatch.setattr("urllib.request.urlopen", serve)
    assert ex.load_result("tiny")["config_hash"] == ex.config_hash(TINY)
    assert set(ex.load_models("tiny")) == set(ex.MODEL_KEYS)
    assert asked == [f"{ex.RESULTS_URL}/tiny.json", f"{ex.RESULTS_URL}/tiny.pt"]
    ex.load_result("tiny")  # the second time from the cache
    assert len(asked) == 2 and (tmp_path / "cache" / "tiny.json").is_file()
    assert ex.result_origin("tiny") == f"downloaded from the book's repository ({ex.RESULTS_URL})"


def test_result_origin_says_where_the_files_were_found(tiny_run, tmp_path, monkeypatch):
    _, out = tiny_run
    monkeypatch.setattr(ex, "RESULTS_DIR", out)
    monkeypatch.setattr(ex, "RESULTS_CACHE", tmp_path / "cache")
    assert ex.result_origin("tiny") == f"read from {out}"
    (out / "tiny.pt").unlink()  # a result without its checkpoint is not a reference run
    with pytest.raises(FileNotFoundError):
        ex.result_origin("tiny", download=False)


def test_results_url_is_the_configured_repository():
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    raw = f"https://raw.githubusercontent.com/{repository}/{branch}/book/results"
    assert ex.RESULTS_URL == raw
