import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resnext_lessons import dissect
from resnext_lessons.blocks import (
    ResNetBottleneck,
    ResNeXtBlockC,
    randomize_batchnorm_,
    to_form,
)
from resnext_lessons.models import ResNeXt


def trained_like_block(in_channels=64, planes=64, cardinality=8, width=4, stride=1, seed=0) -> ResNeXtBlockC:
    """A block in eval mode whose BNs are not the identity, as after training."""
    torch.manual_seed(seed)
    block = ResNeXtBlockC(in_channels, planes, cardinality, width, stride)
    randomize_batchnorm_(block, torch.Generator().manual_seed(seed))
    return block.eval()


@settings(max_examples=10, deadline=None)
@given(
    cardinality=st.sampled_from([2, 4, 8]),
    stride=st.sampled_from([1, 2]),
    in_channels=st.sampled_from([64, 256]),
    seed=st.integers(0, 1000),
)
def test_permuting_paths_keeps_the_function(cardinality, stride, in_channels, seed):
    block = trained_like_block(in_channels, 64, cardinality, 32 // cardinality, stride, seed)
    order = torch.randperm(cardinality, generator=torch.Generator().manual_seed(seed)).tolist()
    permuted = dissect.permute_paths(block, order)
    x = torch.randn(2, in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(permuted(x), block(x), rtol=1e-5, atol=1e-5)


def test_permuted_block_holds_the_paths_in_the_new_order():
    block = trained_like_block()
    d, order = block.group_width, [3, 0, 7, 1, 2, 6, 5, 4]
    permuted = dissect.permute_paths(block, order)
    for i, g in enumerate(order):
        new, old = slice(i * d, (i + 1) * d), slice(g * d, (g + 1) * d)
        assert torch.equal(permuted.conv2.weight[new], block.conv2.weight[old])
        assert torch.equal(permuted.conv1.weight[new], block.conv1.weight[old])
        assert torch.equal(permuted.conv3.weight[:, new], block.conv3.weight[:, old])
        assert torch.equal(permuted.bn1.running_var[new], block.bn1.running_var[old])
        assert torch.equal(permuted.bn2.bias[new], block.bn2.bias[old])
    assert not torch.equal(permuted.conv2.weight, block.conv2.weight)
    assert torch.equal(permuted.bn3.weight, block.bn3.weight)  # after the merge: untouched
    # The inverse order brings every tensor back.
    inverse = [order.index(i) for i in range(len(order))]
    back = dissect.permute_paths(permuted, inverse)
    for key, value in block.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


@pytest.mark.parametrize("forget", ["conv1", "bn1", "conv2", "bn2", "conv3"])
def test_moving_only_some_of_a_path_changes_the_function(forget):
    # What permute_paths moves is all needed: leave one piece behind and the block changes.
    block = trained_like_block()
    permuted = dissect.permute_paths(block, [1, 0, 2, 3, 4, 5, 6, 7])
    with torch.no_grad():
        if forget in ("conv1", "conv2"):
            getattr(permuted, forget).weight.copy_(getattr(block, forget).weight)
        elif forget == "conv3":
            permuted.conv3.weight.copy_(block.conv3.weight)
        else:
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(getattr(permuted, forget), name).copy_(getattr(getattr(block, forget), name))
        x = torch.randn(2, 64, 8, 8)
        assert not torch.allclose(permuted(x), block(x), atol=1e-4)


def test_permute_paths_rejects_a_non_permutation_and_other_blocks():
    block = trained_like_block()
    with pytest.raises(ValueError, match="permutation of 0..7"):
        dissect.permute_paths(block, [0, 1, 2, 3, 4, 5, 6, 6])
    with pytest.raises(ValueError, match="form-\\(c\\) block"):
        dissect.permute_paths(to_form(block, "a"), list(range(8)))


def test_silencing_a_path_is_removing_it_from_form_a():
    block = trained_like_block()
    x = torch.randn(2, 64, 8, 8)
    form_a = to_form(block, "a").eval()
    g = 5
    form_a.paths = torch.nn.ModuleList(p for i, p in enumerate(form_a.paths) if i != g)
    with torch.no_grad(), dissect.silenced(block, dissect.path_channels(block, [g])):
        torch.testing.assert_close(block(x), form_a(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the hook is gone after the context
        assert not torch.allclose(block(x), form_a(x), atol=1e-4)


def test_silencing_equals_zeroing_conv3_columns_and_checks_channels():
    block = trained_like_block()
    edited = copy.deepcopy(block)
    channels = [0, 3, 17, 30]
    with torch.no_grad():
        edited.conv3.weight[:, channels] = 0
        x = torch.randn(2, 64, 6, 6)
        with dissect.silenced(block, channels):
            torch.testing.assert_close(block(x), edited(x))
    with pytest.raises(ValueError, match="32 channels"):
        with dissect.silenced(block, [32]):
            pass
    with pytest.raises(ValueError, match="8 paths"):
        dissect.path_channels(block, [8])
    assert dissect.path_channels(block, [2]) == [8, 9, 10, 11]


def test_silencing_a_resnet_channel_works_on_its_dense_3x3():
    block = ResNetBottleneck(64, 16).eval()
    randomize_batchnorm_(block, torch.Generator().manual_seed(1))
    edited = copy.deepcopy(block)
    with torch.no_grad():
        edited.conv3.weight[:, [4]] = 0
        x = torch.randn(1, 64, 5, 5)
        with dissect.silenced(block, [4]):
            torch.testing.assert_close(block(x), edited(x))


def test_unit_draws_enumerates_small_cases_and_samples_large_ones():
    g = torch.Generator().manual_seed(0)
    assert dissect.unit_draws(8, 1, 8, g) == [(i,) for i in range(8)]
    assert dissect.unit_draws(8, 8, 5, g) == [tuple(range(8))]
    assert dissect.unit_draws(8, 0, 5, g) == [()]
    sampled = dissect.unit_draws(24, 4, 6, g)
    assert len(sampled) == 6 and all(len(set(s)) == 4 and max(s) < 24 for s in sampled)
    with pytest.raises(ValueError):
        dissect.unit_draws(8, 9, 5, g)


def small_model_and_data(seed=0):
    torch.manual_seed(seed)
    model = ResNeXt([1], cardinality=4, bottleneck_width=4, num_classes=3, stem="cifar").eval()
    randomize_batchnorm_(model, torch.Generator().manual_seed(seed))
    images = torch.randn(40, 3, 8, 8)
    with torch.no_grad():
        labels = model(images).argmax(1)  # the intact model is right on every image
    return model, images, labels


def test_silencing_sweep_counts_draws_and_is_repeatable():
    model, images, labels = small_model_and_data()
    block = model.layer1[0]
    assert dissect.accuracy(model, images, labels) == 1.0
    sweep = dissect.silencing_sweep(model, block, [0, 1, 4], unit=block.group_width, images=images,
                                    labels=labels, draws=3)
    assert sweep[0] == [1.0] and len(sweep[1]) == 3 and len(sweep[4]) == 1
    # All paths off: the block is its shortcut, the same on every draw.
    with dissect.silenced(block, range(block.bn2.num_features)):
        assert sweep[4] == [dissect.accuracy(model, images, labels)]
    again = dissect.silencing_sweep(model, block, [1], unit=1, images=images, labels=labels, draws=3, seed=4)
    assert again == dissect.silencing_sweep(model, block, [1], unit=1, images=images, labels=labels, draws=3,
                                            seed=4)
    with pytest.raises(ValueError, match="must divide"):
        dissect.silencing_sweep(model, block, [1], unit=3, images=images, labels=labels)


def test_path_responses_find_a_copied_path():
    model, images, _ = small_model_and_data()
    block = model.layer1[0]
    d = block.group_width
    similarity = dissect.cosine_similarity(dissect.path_responses(model, block, images))
    assert similarity.shape == (4, 4)
    torch.testing.assert_close(similarity, similarity.T)
    assert similarity[0, 1] < 0.999
    with torch.no_grad():  # make path 1 a copy of path 0: conv1 rows, bn1, conv2 group, bn2
        for module in (block.conv1, block.conv2):
            module.weight[d : 2 * d] = module.weight[:d]
        for bn in (block.bn1, block.bn2):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name)[d : 2 * d] = getattr(bn, name)[:d]
    responses = dissect.path_responses(model, block, images)
    assert responses.shape == (4, 40 * 8 * 8)
    assert dissect.cosine_similarity(responses)[0, 1] > 0.9999


def test_silencing_figure_draws_means_with_error_bars_on_both_panels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import silencing_figure

    curves = {"ResNeXt": (32, {0: [0.9], 4: [0.8, 0.7], 32: [0.1]}), "ResNet": (24, {0: [0.9], 24: [0.2]})}
    fig = silencing_figure(curves, "title")
    count_ax, fraction_ax = fig.axes
    line = count_ax.containers[0].lines[0]  # the means; lines[2]: the error bars
    assert list(line.get_xdata()) == [0, 4, 32]
    assert list(line.get_ydata()) == pytest.approx([90, 75, 10])
    assert list(fraction_ax.containers[1].lines[0].get_xdata()) == [0, 1]
    assert fraction_ax.containers[0].lines[0].get_xdata()[1] == pytest.approx(4 / 32)
    assert len(count_ax.containers[0].lines[2][0].get_segments()) == 3  # one bar per point
    plt.close(fig)
    with pytest.raises(ValueError, match="must lie in"):
        silencing_figure({"ResNet": (24, {30: [0.5]})}, "too many")
