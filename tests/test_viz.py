"""Tests for resnext_lessons.viz: each figure function returns a Figure with the expected artists."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch


# ---------------------------------------------------------------- chapters 5 and 6's figures
def test_stage_shapes_figure_draws_one_line_per_network_on_both_panels():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import stage_shapes_figure

    shapes = {"paper": [(256, 56), (512, 28)], "seed": [(256, 224), (512, 112)]}
    fig = stage_shapes_figure(["conv2", "conv3"], shapes, "shapes")
    side, channels = fig.axes
    assert [line.get_label() for line in side.get_lines()] == ["paper", "seed"]
    assert list(side.get_lines()[1].get_ydata()) == [224, 112]
    assert list(channels.get_lines()[0].get_ydata()) == [256, 512]
    assert side.get_yscale() == "log" and fig._suptitle.get_text() == "shapes"
    plt.close(fig)
    with pytest.raises(ValueError, match="3 stage names"):
        stage_shapes_figure(["a", "b", "c"], shapes, "too many names")
    plt.close("all")


def test_grouped_bars_figure_has_a_bar_per_series_and_category():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import grouped_bars_figure

    panels = {"params": {"A": [1, 2, 3], "B": [3, 2, 1]}, "macs": {"A": [5, 5, 5], "B": [1, 1, 1]}}
    fig = grouped_bars_figure(["x", "y", "z"], panels, "bars")
    assert [ax.get_ylabel() for ax in fig.axes] == ["params", "macs"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1, 2, 3, 3, 2, 1]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["x", "y", "z"]
    plt.close(fig)
    with pytest.raises(ValueError, match="3 categories"):
        grouped_bars_figure(["x", "y", "z"], {"p": {"A": [1, 2]}}, "short")
    plt.close("all")


def test_topk_figure_shows_the_image_and_the_most_probable_class_on_top():
    import matplotlib.pyplot as plt
    import numpy as np

    from resnext_lessons.viz import topk_figure

    fig = topk_figure(np.zeros((8, 8, 3)), ["tabby", "tiger cat"], [0.7, 0.2], "top-2")
    ax_image, ax_bars = fig.axes
    assert len(ax_image.get_images()) == 1
    widths = {p.get_y() + p.get_height() / 2: p.get_width() for p in ax_bars.patches}
    assert widths[1] == pytest.approx(0.7) and widths[0] == pytest.approx(0.2)
    ticks = {float(y): t.get_text() for y, t in zip(ax_bars.get_yticks(), ax_bars.get_yticklabels())}
    assert ticks == {1.0: "tabby", 0.0: "tiger cat"}
    plt.close(fig)
    with pytest.raises(ValueError, match="2 labels but 1"):
        topk_figure(np.zeros((8, 8, 3)), ["a", "b"], [1.0], "mismatch")
    plt.close("all")


def test_weight_pattern_figure_marks_exactly_the_block_diagonal():
    import matplotlib.pyplot as plt

    from resnext_lessons.grouped import block_diagonal_weight
    from resnext_lessons.viz import weight_pattern_figure

    grouped = block_diagonal_weight(torch.ones(8, 2, 1, 1), groups=4)  # 8 out, 8 in, 4 groups
    fig = weight_pattern_figure({"dense": torch.ones(8, 8, 1, 1), "grouped": grouped}, "pattern")
    dense_image, grouped_image = (ax.get_images()[0].get_array() for ax in fig.axes)
    assert dense_image.sum() == 64
    assert grouped_image.sum() == 16 and grouped_image[0, 0] and not grouped_image[0, 2]
    assert fig.axes[1].get_title() == "grouped"
    plt.close(fig)
    plt.close("all")


# ---------------------------------------------------------------- chapters 3 and 4's figures
def test_group_connections_figure_draws_channels_squared_over_groups_lines():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import group_connections_figure

    fig = group_connections_figure(8, [1, 2, 8], "wiring")
    assert [len(ax.get_lines()) for ax in fig.axes] == [64, 32, 8]
    depthwise = fig.axes[2].get_lines()
    assert all(tuple(line.get_ydata()) == (line.get_ydata()[0],) * 2 for line in depthwise)  # channel i -> i
    two = fig.axes[1].get_lines()
    assert len({line.get_color() for line in two}) == 2  # one colour per group
    assert fig.axes[1].get_title().startswith("groups=2: 4 inputs")
    plt.close(fig)
    with pytest.raises(ValueError, match="groups=3 does not divide"):
        group_connections_figure(8, [3], "bad")
    plt.close("all")


def test_cardinality_width_figure_has_c_boxes_of_width_d_per_setting():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import cardinality_width_figure

    fig = cardinality_width_figure([(1, 64), (4, 24), (32, 4)], "table 2")
    (ax,) = fig.axes
    boxes = ax.patches
    assert len(boxes) == 1 + 4 + 32
    assert sorted({b.get_width() for b in boxes}) == [4, 24, 64]
    rows = {}
    for b in boxes:
        rows.setdefault(b.get_y(), []).append(b)
    assert sorted(sum(b.get_width() for b in r) for r in rows.values()) == [64, 96, 128]
    labels = {float(y): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels())}
    assert labels == {2.0: "1×64d", 1.0: "4×24d", 0.0: "32×4d"}  # the first setting on top
    assert sum(b.get_width() for b in rows[2 - 0.35]) == 64
    assert ax.get_title() == "table 2"
    plt.close("all")


# ---------------------------------------------------------------- chapters 1 and 2's diagrams
def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_bottleneck_figure_labels_its_layers_and_shortcut():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import bottleneck_figure

    (ax,) = bottleneck_figure(256, 64).axes
    texts = _texts(ax)
    assert {"256, 1×1, 64", "64, 3×3, 64", "64, 1×1, 256", "identity"} <= set(texts)
    (ax,) = bottleneck_figure(256, 128, stride=2).axes
    texts = _texts(ax)
    assert {"128, 3×3, 128, stride 2", "projection: 256, 1×1, 512, stride 2", "y: 512 channels"} <= set(texts)
    assert "identity" not in texts
    plt.close("all")


def test_block_forms_figure_draws_the_three_forms_with_their_layers():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import block_forms_figure

    fig = block_forms_figure(channels=256, cardinality=32, d=4, shown_paths=3)
    a, b, c = fig.axes
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)"]
    assert _texts(a).count("256, 1×1, 4") == 3 and _texts(a).count("4, 1×1, 256") == 3
    assert "Σ" in _texts(a) and "32 paths\nin all" in _texts(a)
    assert _texts(b).count("4, 3×3, 4") == 3 and "concatenate → 128" in _texts(b) and "128, 1×1, 256" in _texts(b)
    assert {"256, 1×1, 128", "128, 3×3, 128, groups = 32", "128, 1×1, 256"} <= set(_texts(c))
    plt.close(fig)
    small = block_forms_figure(channels=16, cardinality=2, d=4, shown_paths=3)  # every path fits
    assert _texts(small.axes[0]).count("16, 1×1, 4") == 2 and "…" not in _texts(small.axes[0])
    plt.close(small)
    with pytest.raises(ValueError, match="shown_paths=0"):
        block_forms_figure(shown_paths=0)
    plt.close("all")


def test_split_transform_merge_figure_has_a_neuron_and_a_block():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import split_transform_merge_figure

    neuron, block = split_transform_merge_figure(inputs=4, cardinality=3).axes
    assert neuron.get_title() == "a neuron" and block.get_title() == "aggregated transformations"
    assert {"$x_{1}$", "$x_D$", "split", "transform", "aggregate"} <= set(_texts(neuron))
    assert {"$T_{1}$", "$T_{2}$", "$T_C$", "identity"} <= set(_texts(block))
    plt.close("all")
def test_resnet_resnext_figure_is_the_papers_figure_1():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import resnet_resnext_figure

    fig = resnet_resnext_figure(channels=256, resnet_width=64, cardinality=32, d=4, shown_paths=3)
    resnet, resnext = fig.axes
    assert resnet.get_title() == "ResNet block" and resnext.get_title() == "ResNeXt block, cardinality 32"
    assert {"256, 1×1, 64", "64, 3×3, 64", "64, 1×1, 256", "identity", "256-d in", "256-d out"} <= set(_texts(resnet))
    assert "Σ" not in _texts(resnet) and "4, 3×3, 4" not in _texts(resnet)
    for label in ("256, 1×1, 4", "4, 3×3, 4", "4, 1×1, 256"):
        assert _texts(resnext).count(label) == 3, label
    assert "total 32 paths,\nsummed with the shortcut" in _texts(resnext) and "…" in _texts(resnext)
    plt.close(fig)
    small = resnet_resnext_figure(channels=16, resnet_width=8, cardinality=2, d=2, shown_paths=3)
    assert _texts(small.axes[1]).count("2, 3×3, 2") == 2 and "…" not in _texts(small.axes[1])
    plt.close(small)
    with pytest.raises(ValueError, match="cardinality=0"):
        resnet_resnext_figure(cardinality=0)
    plt.close("all")


@pytest.mark.parametrize(
    "in_channels, planes, cardinality, bottleneck_width, d, width, out",
    [(256, 64, 32, 4, 4, 128, 256), (1024, 512, 32, 4, 32, 1024, 2048), (64, 64, 1, 64, 64, 64, 256)],
)
def test_block_widths_figure_labels_the_four_widths(in_channels, planes, cardinality, bottleneck_width, d, width, out):
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import block_widths_figure

    (ax,) = block_widths_figure(in_channels, planes, cardinality, bottleneck_width).axes
    texts = _texts(ax)
    assert f"conv1: {in_channels}, 1×1, {width}" in texts
    assert f"conv2: {width}, 3×3, {width}, groups = {cardinality}" in texts
    assert f"conv3: {width}, 1×1, {out}" in texts
    assert f"{cardinality} groups (paths) of d = {d} channels" in texts
    legend = next(t for t in texts if t.startswith("planes"))
    assert legend.splitlines() == [
        f"planes = {planes}: the stage's base width",
        f"d = int(planes · {bottleneck_width} / 64) = {d}: one path's width",
        f"C·d = {cardinality} · {d} = {width}: the grouped width",
        f"4·planes = {out}: the output width",
    ]
    assert ("identity" in texts) == (in_channels == out)
    plt.close("all")
    with pytest.raises(ValueError, match="= 0 channels"):
        block_widths_figure(256, 8, 32, 4)  # d = int(8 * 4 / 64) = 0


# ---------------------------------------------------------------- chapters 7 and 8's figures
def test_training_curves_figure_draws_loss_and_accuracy_per_run():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import training_curves_figure

    history = [{"epoch": 1, "train_loss": 2.0, "test_acc": 0.5}, {"epoch": 2, "train_loss": 0.5, "test_acc": 0.9}]
    fig = training_curves_figure({"a": history, "b": history[:1]}, "curves")
    loss, acc = fig.axes
    assert [line.get_label() for line in loss.get_lines()] == ["a", "b"]
    assert list(acc.get_lines()[0].get_ydata()) == [50.0, 90.0]  # accuracy in percent
    assert loss.get_yscale() == "log" and fig._suptitle.get_text() == "curves"
    plt.close(fig)


def test_image_grid_figure_lays_out_rows_and_rejects_bad_shapes():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import image_grid_figure

    fig = image_grid_figure(torch.rand(10, 3, 8, 8), "grid", ncols=4, labels=[str(i) for i in range(10)])
    assert len(fig.axes) == 12 and sum(ax.axison for ax in fig.axes) == 10
    assert fig.axes[9].get_title() == "9"
    plt.close(fig)
    fig = image_grid_figure(torch.randn(8, 3, 3), "maps", ncols=4, row_labels=["g0", "g1"])
    assert fig.axes[4].get_ylabel() == "g1"
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) or \(N, H, W\)"):
        image_grid_figure(torch.rand(2, 4, 8, 8), "four channels")


def test_similarity_figure_shows_the_matrix_on_a_fixed_scale():
    import matplotlib.pyplot as plt

    from resnext_lessons.viz import similarity_figure

    matrix = torch.eye(3)
    fig = similarity_figure(matrix, "sim")
    image = fig.axes[0].get_images()[0]
    assert image.get_clim() == (-1, 1) and (image.get_array() == matrix.numpy()).all()
    plt.close(fig)
    with pytest.raises(ValueError, match="square"):
        similarity_figure(torch.ones(2, 3), "not square")
