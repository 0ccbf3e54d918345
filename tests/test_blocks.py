import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from resnext_lessons.blocks import (
    FORMS,
    ResNetBottleneck,
    ResNeXtBlockA,
    ResNeXtBlockB,
    ResNeXtBlockC,
    group_conv_width,
    to_form,
)


def randomize_bn(block: torch.nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics so a carried-over mistake would show."""
    g = torch.Generator().manual_seed(seed)
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g)
            m.running_mean = torch.randn(n, generator=g)
            m.running_var = torch.rand(n, generator=g) + 0.5


def test_resnet_bottleneck_matches_torchvision_names_shapes_and_output():
    ours = ResNetBottleneck(256, 128, stride=2)
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(256, 512, 1, 2, bias=False), torch.nn.BatchNorm2d(512)
    )
    tv = torchvision.models.resnet.Bottleneck(256, 128, stride=2, downsample=downsample)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in tv.state_dict().items()
    ]
    randomize_bn(tv)
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 256, 14, 14)
    torch.testing.assert_close(ours.eval()(x), tv.eval()(x))
    assert (
        ours.expansion == 4
        and ours.conv2.stride == (2, 2)
        and ours.conv1.stride == (1, 1)
    )


def test_block_c_is_torchvision_bottleneck_with_groups():
    ours = ResNeXtBlockC(256, 64, cardinality=32, bottleneck_width=4)
    tv = torchvision.models.resnet.Bottleneck(256, 64, groups=32, base_width=4)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in tv.state_dict().items()
    ]
    assert ours.conv2.groups == 32 and ours.width == 128 and ours.downsample is None


@pytest.mark.parametrize(
    "planes, cardinality, width, expected",
    [
        (64, 32, 4, 128),
        (128, 32, 4, 256),
        (512, 32, 8, 2048),
        (64, 64, 4, 256),
        (64, 1, 64, 64),
        (64, 8, 64, 512),
    ],
)
def test_group_conv_width_is_torchvisions(planes, cardinality, width, expected):
    assert group_conv_width(planes, cardinality, width) == expected


@pytest.mark.parametrize("form", ["a", "b", "c"])
def test_projection_shortcut_only_when_shape_changes(form):
    assert FORMS[form](256, 64, 4, 4, stride=1).downsample is None
    assert FORMS[form](64, 64, 4, 4, stride=1).downsample is not None
    assert FORMS[form](256, 64, 4, 4, stride=2).downsample is not None


def test_form_a_has_c_explicit_paths_each_back_to_full_width():
    block = ResNeXtBlockA(256, 64, cardinality=32, bottleneck_width=4)
    assert isinstance(block.paths, torch.nn.ModuleList) and len(block.paths) == 32
    path = block.paths[0]
    assert (
        path.conv1.out_channels == 4
        and path.conv2.in_channels == 4
        and path.conv3.out_channels == 256
    )
    assert not hasattr(path, "bn3")  # BN comes after the sum (the paper's footnote)
    assert block.bn3.num_features == 256


def test_form_b_concatenates_then_one_dense_1x1():
    block = ResNeXtBlockB(256, 64, cardinality=32, bottleneck_width=4)
    assert len(block.paths) == 32 and block.paths[0].conv2.out_channels == 4
    assert block.conv3.in_channels == 128 and block.conv3.groups == 1


def test_three_forms_have_the_same_number_of_parameters():
    counts = {
        f: sum(p.numel() for p in cls(256, 64, 32, 4).parameters())
        for f, cls in FORMS.items()
    }
    assert len(set(counts.values())) == 1, counts


@st.composite
def block_cases(draw):
    cardinality = draw(st.integers(1, 6))
    planes = draw(st.sampled_from([8, 16, 32]))
    # keep int(planes * width / 64) >= 1
    width = draw(st.integers(-(-64 // planes), 24))
    in_channels = draw(st.sampled_from([8, 12, planes * 4]))
    stride = draw(st.integers(1, 2))
    return in_channels, planes, cardinality, width, stride


@settings(max_examples=25, deadline=None)
@given(
    block_cases(), st.sampled_from("abc"), st.sampled_from("abc"), st.integers(0, 1000)
)
def test_to_form_preserves_the_function_from_any_form_to_any_form(
    case, source, target, seed
):
    in_channels, planes, cardinality, width, stride = case
    torch.manual_seed(seed)
    block = FORMS[source](in_channels, planes, cardinality, width, stride)
    randomize_bn(block, seed)
    block.eval()
    converted = to_form(block, target)
    assert type(converted) is FORMS[target] and not converted.training
    assert (converted.cardinality, converted.width, converted.stride) == (
        block.cardinality,
        block.width,
        block.stride,
    )
    x = torch.randn(2, in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), block(x), rtol=1e-4, atol=1e-5)
        # and back again, exactly the same weights
        back = to_form(converted, source)
        for (k1, v1), (k2, v2) in zip(
            back.state_dict().items(), block.state_dict().items()
        ):
            assert k1 == k2 and torch.equal(v1, v2)


def test_to_form_copies_weights_rather_than_sharing_them():
    block = ResNeXtBlockC(64, 16, 4, 16).eval()
    a = to_form(block, "a")
    with torch.no_grad():
        a.paths[0].conv1.weight.zero_()
    assert block.conv1.weight.abs().sum() > 0


def test_to_form_keeps_training_mode_and_matches_in_train_mode_too():
    torch.manual_seed(0)
    block = ResNeXtBlockB(32, 16, 4, 16).train()
    converted = to_form(block, "c")
    assert converted.training
    x = torch.randn(4, 32, 6, 6)
    torch.testing.assert_close(converted(x), block(x), rtol=1e-4, atol=1e-5)


def test_resnet_bottleneck_converts_to_form_a_with_one_path():
    block = ResNetBottleneck(64, 64)
    a = to_form(block, "a")
    assert len(a.paths) == 1 and a.paths[0].conv1.out_channels == 64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cardinality=0), "cardinality must be a positive integer"),
        (
            dict(bottleneck_width=1, planes=32),
            r"int\(32 \* 1 / 64\) = 0.*bottleneck_width to at least 2",
        ),
        (dict(stride=0), "stride must be a positive integer"),
        (dict(in_channels=-4), "in_channels must be a positive integer"),
    ],
)
def test_nonsense_hyperparameters_are_clear_errors(kwargs, message):
    args = (
        dict(in_channels=64, planes=64, cardinality=32, bottleneck_width=4, stride=1)
        | kwargs
    )
    for cls in FORMS.values():
        with pytest.raises(ValueError, match=message):
            cls(**args)


def test_to_form_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="form must be one of 'a', 'b', 'c'"):
        to_form(ResNeXtBlockC(64, 64), "d")
    with pytest.raises(ValueError, match="to_form takes"):
        to_form(torch.nn.Conv2d(3, 3, 1), "a")


def test_wrong_input_channels_is_a_clear_error_in_every_form():
    for cls in FORMS.values():
        block = cls(64, 16, 4, 16)
        with pytest.raises(ValueError, match=r"expects x of shape \(N, 64, H, W\)"):
            block(torch.randn(1, 32, 8, 8))


# ---------------------------------------------------------------- randomize_batchnorm_ (chapters 1-2)
def test_randomize_batchnorm_sets_every_bn_in_range_and_leaves_convolutions_alone():
    from resnext_lessons.blocks import randomize_batchnorm_

    block = ResNeXtBlockC(64, 32, cardinality=4, bottleneck_width=4, stride=2)
    convs_before = {
        k: v.clone()
        for k, v in block.state_dict().items()
        if "conv" in k or k == "downsample.0.weight"
    }
    assert randomize_batchnorm_(block, torch.Generator().manual_seed(0)) is block
    bns = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 4
    for bn in bns:
        for name, low, high in [
            ("weight", 0.5, 1.5),
            ("bias", -0.5, 0.5),
            ("running_mean", -0.5, 0.5),
            ("running_var", 0.5, 1.5),
        ]:
            t = getattr(bn, name)
            assert low <= t.min() and t.max() < high, name
            assert t.unique().numel() == t.numel(), (
                f"{name}: every channel gets its own value"
            )
    for k, v in convs_before.items():
        assert torch.equal(block.state_dict()[k], v)
    # No longer the identity in eval mode.
    x = torch.randn(3, bns[0].num_features, 5, 5)
    assert not torch.allclose(bns[0].eval()(x), x)


def test_randomize_batchnorm_is_reproducible_with_a_generator_and_exposes_a_misplaced_bn():
    from resnext_lessons.blocks import randomize_batchnorm_

    a, b = ResNetBottleneck(32, 8), ResNetBottleneck(32, 8)
    b.load_state_dict(a.state_dict())
    randomize_batchnorm_(a, torch.Generator().manual_seed(3))
    randomize_batchnorm_(b, torch.Generator().manual_seed(3))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    randomize_batchnorm_(b, torch.Generator().manual_seed(4))
    assert not torch.equal(a.bn1.running_mean, b.bn1.running_mean)

    # bn1 and bn2 swapped in place of each other: fresh BNs hide it, random ones do not.
    class Swapped(ResNetBottleneck):
        def forward(self, x):
            out = self.relu(self.bn2(self.conv1(x)))
            out = self.relu(self.bn1(self.conv2(out)))
            return self._merge(self.bn3(self.conv3(out)), x)

    right, wrong = ResNetBottleneck(32, 8).eval(), Swapped(32, 8).eval()
    wrong.load_state_dict(right.state_dict())
    x = torch.randn(2, 32, 6, 6)
    torch.testing.assert_close(
        right(x), wrong(x)
    )  # fresh BNs: the mistake is invisible
    randomize_batchnorm_(right, torch.Generator().manual_seed(0))
    wrong.load_state_dict(right.state_dict())
    assert not torch.allclose(right(x), wrong(x))


def test_randomize_batchnorm_rejects_what_is_not_a_module():
    from resnext_lessons.blocks import randomize_batchnorm_

    with pytest.raises(ValueError, match="nn.Module, got Tensor"):
        randomize_batchnorm_(torch.zeros(3))
