import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resnext_lessons import complexity as cx
from resnext_lessons import models
from resnext_lessons.blocks import ResNeXtBlockC


def test_table1_parameters_and_multiply_adds():
    r50, x50 = models.resnet50(), models.resnext50_32x4d()
    assert cx.count_params(r50) == 25_557_032 and cx.count_params(x50) == 25_028_904
    assert round(cx.count_flops(r50) / 1e9, 2) == 4.09
    assert round(cx.count_flops(x50) / 1e9, 2) == 4.23
    # The paper's Table 1, to its precision: its parameter counts leave out BN's scale and shift
    assert (round(cx.count_params(r50, batchnorm=False) / 1e6, 1), round(cx.count_params(x50, batchnorm=False) / 1e6, 1)) == (25.5, 25.0)
    assert cx.count_params(r50) - cx.count_params(r50, batchnorm=False) == 53_120  # 2 per BN channel
    assert (round(cx.count_flops(r50) / 1e9, 1), round(cx.count_flops(x50) / 1e9, 1)) == (4.1, 4.2)


def test_count_flops_is_multiply_adds_of_a_single_conv():
    conv = torch.nn.Conv2d(8, 16, 3, padding=1, bias=False)
    assert cx.count_flops(conv, (1, 8, 10, 10)) == 16 * 8 * 9 * 100 == cx.conv_macs(8, 16, 3, 10)
    grouped = torch.nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False)
    assert cx.count_flops(grouped, (1, 8, 10, 10)) == 16 * 2 * 9 * 100 == cx.conv_macs(8, 16, 3, 10, groups=4)


def test_count_flops_leaves_batchnorm_statistics_and_mode_alone():
    m = models.ResNeXt([1], num_classes=3, stem="cifar").train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    cx.count_flops(m, (2, 3, 16, 16))
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_breakdown_adds_up_to_the_totals():
    m = models.resnext50_32x4d()
    rows = cx.breakdown(m, depth=1)
    assert [r.name for r in rows][:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert sum(r.macs for r in rows) == cx.count_flops(m)
    assert sum(r.params for r in rows) == cx.count_params(m)
    by_name = {r.name: r for r in rows}
    assert by_name["layer4"].output_shape == (1, 2048, 7, 7)
    blocks = cx.breakdown(m, depth=2)
    assert sum(r.macs for r in blocks if r.name.startswith("layer1.")) == by_name["layer1"].macs


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 8), st.sampled_from([16, 32, 64]), st.integers(1, 3), st.sampled_from([16, 64, 128]),
    st.integers(1, 2), st.sampled_from([7, 8, 14]),
)
def test_block_formulas_agree_with_counted_numbers(cardinality, planes, wmul, in_channels, stride, size):
    width = max(-(-64 // planes), 4 * wmul)
    block = ResNeXtBlockC(in_channels, planes, cardinality, width, stride)
    assert cx.block_params(in_channels, planes, cardinality, width, stride) == cx.count_params(block)
    assert cx.block_macs(in_channels, planes, cardinality, width, stride, size) == cx.count_flops(block, (1, in_channels, size, size))


@pytest.mark.parametrize(
    "layers, cardinality, width, stem, size",
    [([3, 4, 6, 3], 32, 4, "imagenet", 224), ([3, 4, 6, 3], 1, 64, "imagenet", 224), ([3, 3, 3], 8, 64, "cifar", 32), ([1, 2], 2, 40, "cifar", 20)],
)
def test_model_formulas_agree_with_counted_numbers(layers, cardinality, width, stem, size):
    m = models.ResNeXt(layers, cardinality, width, num_classes=10, stem=stem)
    assert cx.resnext_params(layers, cardinality, width, 10, stem) == cx.count_params(m)
    assert cx.resnext_macs(layers, cardinality, width, 10, stem, size) == cx.count_flops(m, (1, 3, size, size))


def test_table2_widths_reproduce_the_paper():
    rows = cx.table2()
    assert [(r["cardinality"], r["d"]) for r in rows] == [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
    assert [r["group_width"] for r in rows] == [64, 80, 96, 112, 128]
    assert cx.template_params(1, 64) == 69_632
    assert all(abs(r["params"] - 69_632) / 69_632 < 0.03 for r in rows)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.sampled_from([64, 128, 256, 512]), st.sampled_from([16, 64, 128]))
def test_width_for_cardinality_is_the_closest_integer(cardinality, channels, reference):
    d = cx.width_for_cardinality(cardinality, channels, reference)
    target = cx.template_params(1, reference, channels)
    error = abs(cx.template_params(cardinality, d, channels) - target)
    for other in (d - 1, d + 1):
        if other >= 1:
            assert error <= abs(cx.template_params(cardinality, other, channels) - target)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"input_size must be \(N, C, H, W\)"):
        cx.count_flops(models.resnet50(), (3, 224, 224))
    with pytest.raises(ValueError, match="cardinality must be a positive integer"):
        cx.width_for_cardinality(0)
    with pytest.raises(ValueError, match="groups=3 does not divide the 8 input channels"):
        cx.conv_params(8, 9, 3, groups=3)


@pytest.mark.parametrize(
    "cardinality, d", [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4), (16, 7)]
)
def test_template_split_adds_up_and_matches_the_layers(cardinality, d):
    one_by_one, three_by_three = cx.template_split(cardinality, d)
    assert one_by_one + three_by_three == cx.template_params(cardinality, d)
    width = cardinality * d
    assert one_by_one == cx.conv_params(256, width, 1) + cx.conv_params(
        width, 256, 1
    )
    assert three_by_three == cx.conv_params(width, width, 3, groups=cardinality)


def test_template_split_moves_the_budget_to_the_one_by_ones_along_table2():
    # Table 2: more, narrower paths at equal cost leave more budget to wider 1x1s.
    rows = cx.table2()
    shares = [
        cx.template_split(r["cardinality"], r["d"])[0] / r["params"] for r in rows
    ]
    assert shares == sorted(shares)
    assert (round(shares[0], 2), round(shares[-1], 2)) == (0.47, 0.93)
    assert [r["cardinality"] * r["d"] for r in rows] == [64, 80, 96, 112, 128]
    with pytest.raises(ValueError):
        cx.template_split(0, 4)
