import pytest
import torch
import torchvision

from resnext_lessons import models
from resnext_lessons.complexity import count_params

TORCHVISION_NAMES = ["resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_state_dict_keys_and_shapes_identical_to_torchvision(name):
    ours = models.get_model(name)
    theirs = getattr(torchvision.models, name)().state_dict()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in theirs.items()]
    ours.load_state_dict(theirs, strict=True)


@pytest.mark.parametrize("name, expected", [("resnet50", 25_557_032), ("resnext50_32x4d", 25_028_904)])
def test_parameter_counts_equal_torchvisions_to_the_unit(name, expected):
    assert count_params(models.get_model(name)) == expected
    assert count_params(getattr(torchvision.models, name)()) == expected


@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d"])
def test_strict_loading_gives_identical_logits(name):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)().eval()
    # non-trivial BN statistics, so the eval path is really exercised
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    ours = models.get_model(name)
    ours.load_state_dict(tv.state_dict(), strict=True)
    ours.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x), tv(x))


def test_num_classes_and_zero_init_residual_like_torchvision():
    torch.manual_seed(0)
    ours = models.resnext50_32x4d(num_classes=10, zero_init_residual=True)
    assert ours.fc.out_features == 10
    assert all(not b.bn3.weight.detach().any() for stage in ours.stages() for b in stage)
    tv = torchvision.models.resnext50_32x4d(num_classes=10, zero_init_residual=True)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in tv.state_dict().items()]


def test_resnext29_8x64d_is_the_papers_cifar_model():
    m = models.resnext29(8, 64)
    assert round(count_params(m) / 1e6, 1) == 34.4  # the paper's Table 7
    assert isinstance(m.maxpool, torch.nn.Identity) and m.conv1.kernel_size == (3, 3) and m.conv1.out_channels == 64
    assert [len(s) for s in m.stages()] == [3, 3, 3]
    x = torch.randn(2, 3, 32, 32)
    shapes = []
    h = m.relu(m.bn1(m.conv1(x)))
    for stage in m.stages():
        h = stage(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(256, 32, 32), (512, 16, 16), (1024, 8, 8)]
    assert m(x).shape == (2, 10)


def test_any_depth_and_cardinality():
    m = models.ResNeXt([1, 1], cardinality=4, bottleneck_width=8, num_classes=7, stem="cifar")
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 7)
    assert m.layer2[0].conv2.groups == 4 and not hasattr(m, "layer3")


def test_seed_model_reproduces_the_posts_deviations():
    seed = models.seed_resnext50(num_classes=10)
    assert seed.fc.out_features == 100  # the post ignores its class argument
    first = seed.conv2[0].split_transform[0]
    assert first.kernel_size == (1, 1) and first.groups == 32  # grouped first 1x1
    stem = seed.conv1[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert [len(s) for s in (seed.conv2, seed.conv3, seed.conv4, seed.conv5)] == [3, 4, 6, 3]
    s152 = models.seed_resnext152()
    assert [len(s) for s in (s152.conv2, s152.conv3, s152.conv4, s152.conv5)] == [3, 4, 36, 3]
    assert [len(s) for s in models.resnet152().stages()] == [3, 8, 36, 3]
    assert seed(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_seed_model_has_fewer_parameters_than_resnext50_because_of_the_grouped_1x1():
    assert count_params(models.seed_resnext50()) < count_params(models.resnext50_32x4d(num_classes=100))


def test_get_model_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Unknown model 'resnext50_32x4'.*Did you mean 'resnext50_32x4d'"):
        models.get_model("resnext50_32x4")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layers=[]), "layers must be a non-empty list"),
        (dict(layers=[3, 0]), "layers must be a non-empty list"),
        (dict(layers=[1], stem="mnist"), "stem must be one of"),
        (dict(layers=[1], num_classes=0), "num_classes must be a positive integer"),
        (dict(layers=[1], cardinality=0), "cardinality must be a positive integer"),
    ],
)
def test_bad_hyperparameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.ResNeXt(**kwargs)


def test_wrong_image_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        models.resnet50()(torch.randn(1, 1, 64, 64))


def test_torchvision_names_are_exactly_the_torchvision_compatible_builders():
    assert models.TORCHVISION_NAMES == tuple(TORCHVISION_NAMES)


def test_imagenet_weights_offline_says_so_and_returns_none(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # nothing cached

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(models.socket, "create_connection", refuse)
    loaded = models.load_imagenet_weights("resnext50_32x4d")
    assert loaded.state_dict is None and loaded.source == "offline"
    assert "cannot be reached" in loaded.message


def test_imagenet_weights_corrupt_cached_file_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    (tmp_path / "checkpoints").mkdir()
    corrupt = tmp_path / "checkpoints" / weights.url.rsplit("/", 1)[1]
    corrupt.write_bytes(b"not a checkpoint")
    loaded = models.load_imagenet_weights("resnet50")
    assert loaded.state_dict is None and loaded.source == "failed"
    assert "Could not load" in loaded.message
    assert corrupt.read_bytes() == b"not a checkpoint"  # the learner's file is left alone


def test_imagenet_weights_unknown_name():
    with pytest.raises(ValueError, match="Unknown torchvision ImageNet model 'resnext29_8x64d'"):
        models.load_imagenet_weights("resnext29_8x64d")


@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d"])
def test_runs_the_same_aten_ops_as_torchvision(name):
    # Same operations, same count: the from-scratch model can be as fast as the reference.
    from collections import Counter

    from torch.profiler import ProfilerActivity, profile

    def ops(model):
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
            model(torch.randn(1, 3, 64, 64))
        return Counter(e.name for e in prof.events() if e.name.startswith("aten::"))

    assert ops(models.get_model(name).eval()) == ops(getattr(torchvision.models, name)().eval())


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(models.socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_load_imagenet_weights_reads_torchs_cache_without_network(monkeypatch, tmp_path):
    # Where torchvision looks: $TORCH_HOME/hub/checkpoints/<file name of the weights' URL>.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _no_network(monkeypatch)
    weights = torchvision.models.ResNeXt50_32X4D_Weights.IMAGENET1K_V1
    cached = tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    cached.parent.mkdir(parents=True)
    torch.manual_seed(0)
    saved = models.resnext50_32x4d().state_dict()
    torch.save(saved, cached)

    loaded = models.load_imagenet_weights("resnext50_32x4d", "IMAGENET1K_V1")
    assert loaded.source == "cache" and str(cached) in loaded.message
    assert list(loaded.state_dict) == list(saved)
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in saved.items())
    models.resnext50_32x4d().load_state_dict(loaded.state_dict, strict=True)
    # The default (V2) weights are another file, not in the cache: reported, not raised.
    default = models.load_imagenet_weights("resnext50_32x4d")
    assert default.state_dict is None and default.source == "offline"
    assert "cannot be reached" in default.message


def test_load_imagenet_weights_unknown_weights_name_suggests_the_closest():
    message = r"Unknown weights for resnext50_32x4d 'IMAGENET1K_V3'.*IMAGENET1K_V1"
    with pytest.raises(ValueError, match=message):
        models.load_imagenet_weights("resnext50_32x4d", "IMAGENET1K_V3")


def test_resnext_widths_per_stage_match_the_docstring_names():
    # planes = 64 * 2**i; d doubles per stage (4, 8, 16, 32); grouped width C*d;
    # output width 4*planes.
    net = models.resnext50_32x4d()
    firsts = [stage[0] for stage in net.stages()]
    assert [b.planes for b in firsts] == [64, 128, 256, 512]
    assert [b.group_width for b in firsts] == [4, 8, 16, 32]
    assert [b.width for b in firsts] == [32 * d for d in (4, 8, 16, 32)]
    assert [b.out_channels for b in firsts] == [4 * p for p in (64, 128, 256, 512)]
    resnet = models.resnet50()
    assert [stage[0].width for stage in resnet.stages()] == [64, 128, 256, 512]


def test_load_imagenet_weights_downloads_through_torchvision_when_the_server_answers(
    monkeypatch, tmp_path
):
    # The online branch: torchvision's own download into the cache, then a load from it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    class Answer:  # the server answers the connection check
        def close(self) -> None:
            pass

    monkeypatch.setattr(models.socket, "create_connection", lambda *a, **k: Answer())
    urls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        urls.append(url)
        torch.save({"w": torch.ones(2)}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    weights = torchvision.models.ResNeXt50_32X4D_Weights.IMAGENET1K_V1
    loaded = models.load_imagenet_weights("resnext50_32x4d", "IMAGENET1K_V1")
    assert urls == [weights.url]
    assert loaded.source == "download" and weights.url in loaded.message
    assert torch.equal(loaded.state_dict["w"], torch.ones(2))
    cached = tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]
    assert cached.exists()  # kept in torch's cache for the next time
