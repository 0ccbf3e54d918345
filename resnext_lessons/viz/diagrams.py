"""Block diagrams of chapters 1-2: the ResNet bottleneck, the paper's three equivalent forms,
split-transform-merge."""

from __future__ import annotations

from typing import Any

from .drawing import (
    _BOX_EDGE,
    _INK,
    _NOTE,
    _diagram_arrow,
    _diagram_finish,
    _diagram_layer,
    _diagram_node,
    _diagram_note,
    _diagram_path_columns,
    _diagram_shortcut,
    _diagram_stack,
)


def bottleneck_figure(
    in_channels: int = 256, planes: int = 64, stride: int = 1, expansion: int = 4
) -> Any:
    """ResNet's bottleneck block (He et al., 2016, Fig. 5 right) with its channel counts.

    1x1 reduce -> 3x3 -> 1x1 expand, BN after each convolution, ReLU after the sum. The
    shortcut is the identity when the shape is kept, else a projection (a strided 1x1 when
    ``stride`` > 1, which the 3x3 shares). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    out = planes * expansion
    strided = f", stride {stride}" if stride != 1 else ""
    fig, ax = plt.subplots(figsize=(3.8, 4.6))
    ax.text(0, 5.0, f"x: {in_channels} channels", ha="center", va="center", fontsize=9)
    layers = [
        (f"{in_channels}, 1×1, {planes}", "reduce", "BN, ReLU"),
        (f"{planes}, 3×3, {planes}{strided}", "transform", "BN, ReLU"),
        (f"{planes}, 1×1, {out}", "expand", "BN"),
    ]
    heights = (4.0, 3.0, 2.0)
    previous = _diagram_stack(ax, 5.0, list(zip(heights, [row[0] for row in layers])), 9)
    for y, (_, role, after) in zip(heights, layers):
        _diagram_note(ax, -1.4, y, role, ha="right")
        _diagram_note(ax, 0.15, y - 0.45, after, ha="left")
    _diagram_arrow(ax, (0, previous), (0, 1.0))
    _diagram_node(ax, 0, 1.0, "+")
    projection = stride != 1 or in_channels != out
    shortcut = (
        f"projection: {in_channels}, 1×1, {out}{strided}" if projection else "identity"
    )
    _diagram_shortcut(ax, (0.85, 5.0), (0, 1.0), 1.3, shortcut)
    _diagram_arrow(ax, (0, 1.0), (0, 0.0))
    _diagram_note(ax, 0.15, 0.5, "ReLU", ha="left")
    ax.text(0, -0.05, f"y: {out} channels", ha="center", va="top", fontsize=9)
    _diagram_finish(ax, (-2.3, 1.9), (-0.5, 5.3), "ResNet bottleneck block")
    return fig


def block_forms_figure(
    channels: int = 256, cardinality: int = 32, d: int = 4, shown_paths: int = 3
) -> Any:
    """The ResNeXt paper's Fig. 3: one block drawn in its three equivalent forms.

    (a) C paths of 1x1 -> 3x3 -> 1x1 whose outputs are summed, then BN;
    (b) C paths of 1x1 -> 3x3, concatenated, then one 1x1;
    (c) a dense 1x1, a grouped 3x3 (groups = C), a dense 1x1.
    ``shown_paths`` paths are drawn (the last one after an ellipsis). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    for name, value in (
        ("cardinality", cardinality),
        ("d", d),
        ("shown_paths", shown_paths),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {name}={value!r}."
            )
    width = cardinality * d
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.8))
    xs, dots = _diagram_path_columns(shown_paths, cardinality, spacing=1.25)
    top, bottom = 6.0, -0.2

    def paths(ax: Any, labels: list[str]) -> float:
        """Draw the paths' layers; returns the y of the last one."""
        ys = [5.0 - i for i in range(len(labels))]
        for x in xs:
            _diagram_arrow(ax, (0, top), (x, ys[0] + _BOX_EDGE), shrink=(8, 1))
            for i, (y, label) in enumerate(zip(ys, labels)):
                _diagram_layer(ax, x, y, label, fontsize=7)
                if i:
                    _diagram_arrow(ax, (x, ys[i - 1]), (x, y))
        if dots is not None:
            for y in ys:
                ax.text(dots, y, "…", ha="center", va="center", fontsize=12)
            _diagram_note(ax, -3.1, 1.0, f"{cardinality} paths\nin all", ha="left")
        return ys[-1]

    def merge(ax: Any, y_from: float) -> None:
        """Shortcut sum, ReLU and the output, shared by the three forms."""
        _diagram_arrow(ax, (0, y_from), (0, 1.0))
        _diagram_node(ax, 0, 1.0, "+")
        _diagram_shortcut(ax, (0.85, top), (0, 1.0), 2.9, "identity")
        _diagram_arrow(ax, (0, 1.0), (0, bottom + 0.15))
        _diagram_note(ax, 0.15, 0.5, "ReLU", ha="left")
        ax.text(0, bottom, f"{channels} channels", ha="center", va="top", fontsize=8)

    for ax in axes:
        ax.text(0, top, f"x: {channels} channels", ha="center", va="center", fontsize=8)

    ax = axes[0]
    last = paths(
        ax, [f"{channels}, 1×1, {d}", f"{d}, 3×3, {d}", f"{d}, 1×1, {channels}"]
    )
    for x in xs:
        _diagram_arrow(ax, (x, last - _BOX_EDGE), (0, 2.0), shrink=(1, 8))
    _diagram_node(ax, 0, 2.0, "Σ")
    _diagram_note(ax, 0.15, 1.5, "BN", ha="left")
    merge(ax, 2.0)
    _diagram_finish(
        ax, (-3.2, 3.4), (-0.7, 6.3), "(a) aggregated transformations: C paths, summed"
    )

    ax = axes[1]
    last = paths(ax, [f"{channels}, 1×1, {d}", f"{d}, 3×3, {d}"])
    for x in xs:
        _diagram_arrow(ax, (x, last - _BOX_EDGE), (0, 3.0 + _BOX_EDGE), shrink=(1, 1))
    _diagram_layer(ax, 0, 3.0, f"concatenate → {width}", fontsize=7)
    _diagram_arrow(ax, (0, 3.0), (0, 2.0))
    _diagram_layer(ax, 0, 2.0, f"{width}, 1×1, {channels}", fontsize=7)
    _diagram_note(ax, 0.15, 1.5, "BN", ha="left")
    merge(ax, 2.0)
    _diagram_finish(ax, (-3.2, 3.4), (-0.7, 6.3), "(b) early concatenation")

    ax = axes[2]
    labels = [
        f"{channels}, 1×1, {width}",
        f"{width}, 3×3, {width}, groups = {cardinality}",
        f"{width}, 1×1, {channels}",
    ]
    _diagram_stack(ax, top, list(zip((5.0, 4.0, 3.0), labels)))
    _diagram_note(ax, 0.15, 2.5, "BN", ha="left")
    merge(ax, 3.0)
    _diagram_finish(ax, (-3.2, 3.4), (-0.7, 6.3), "(c) grouped convolution")
    fig.suptitle(
        f"One ResNeXt block, three equivalent forms (C = {cardinality}, d = {d})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def split_transform_merge_figure(inputs: int = 4, cardinality: int = 3) -> Any:
    """A neuron and a ResNeXt block side by side (the paper's Fig. 2 and Eq. 3).

    Left: the inner product sum_i w_i x_i as splitting (x_i), transforming (w_i x_i) and
    aggregating (sum). Right: the same pattern with each w_i x_i replaced by a transformation
    T_i(x) of the whole input, plus the shortcut: y = x + sum_i T_i(x). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    xs = [1.1 * (i - (inputs - 1) / 2) for i in range(inputs)]
    names = [f"$x_{{{i + 1}}}$" for i in range(inputs - 1)] + ["$x_D$"]
    for x, name, weight in zip(xs, names, names):
        left.text(x, 3.0, name, ha="center", va="center", fontsize=10)
        _diagram_arrow(left, (x, 3.0), (0, 1.0))
        left.text(
            x * 0.55,
            2.05,
            weight.replace("x", "w"),
            ha="center",
            va="center",
            fontsize=8,
            color=_NOTE,
            bbox={
                "boxstyle": "round,pad=0.1",
                "facecolor": "white",
                "edgecolor": "none",
            },
        )
    if inputs > 2:
        left.text(
            (xs[-2] + xs[-1]) / 2, 3.0, "…", ha="center", va="center", fontsize=12
        )
    _diagram_node(left, 0, 1.0, "Σ")
    _diagram_arrow(left, (0, 1.0), (0, 0.0))
    left.text(0, -0.1, r"$\sum_{i=1}^{D} w_i x_i$", ha="center", va="top", fontsize=10)
    for y, step in zip((3.0, 2.05, 1.0), ("split", "transform", "aggregate")):
        _diagram_note(left, -2.6, y, step, ha="left")
    _diagram_finish(left, (-2.7, 2.4), (-0.7, 3.4), "a neuron")

    cs = [1.2 * (i - (cardinality - 1) / 2) for i in range(cardinality)]
    tnames = [f"$T_{{{i + 1}}}$" for i in range(cardinality - 1)] + ["$T_C$"]
    right.text(0, 3.0, "$x$", ha="center", va="center", fontsize=10)
    for x, name in zip(cs, tnames):
        _diagram_arrow(right, (0, 3.0), (x, 2.05))
        _diagram_layer(right, x, 2.05, name, fontsize=9)
        _diagram_arrow(right, (x, 2.05), (0, 1.0))
    if cardinality > 2:
        right.text(
            (cs[-2] + cs[-1]) / 2, 2.05, "…", ha="center", va="center", fontsize=12
        )
    _diagram_node(right, 0, 1.0, "+")
    _diagram_shortcut(right, (0.2, 3.0), (0, 1.0), 2.2, "identity")
    _diagram_arrow(right, (0, 1.0), (0, 0.0))
    right.text(
        0, -0.1, r"$y = x + \sum_{i=1}^{C} T_i(x)$", ha="center", va="top", fontsize=10
    )
    _diagram_finish(right, (-2.7, 2.8), (-0.7, 3.4), "aggregated transformations")
    fig.tight_layout()
    return fig


def resnet_resnext_figure(
    channels: int = 256,
    resnet_width: int = 64,
    cardinality: int = 32,
    d: int = 4,
    shown_paths: int = 3,
) -> Any:
    """The ResNeXt paper's Fig. 1: a ResNet block beside a ResNeXt block of about the same cost.

    Left: ResNet's bottleneck, (channels, 1x1, resnet_width) -> (resnet_width, 3x3,
    resnet_width) -> (resnet_width, 1x1, channels). Right: ``cardinality`` paths of
    (channels, 1x1, d) -> (d, 3x3, d) -> (d, 1x1, channels), summed. Both add the identity
    shortcut. Layers read (input channels, filter size, output channels), as in the paper.
    ``shown_paths`` paths are drawn (the last one after an ellipsis). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    for name, value in (
        ("channels", channels),
        ("resnet_width", resnet_width),
        ("cardinality", cardinality),
        ("d", d),
        ("shown_paths", shown_paths),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {name}={value!r}."
            )
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 1.6]}
    )
    top, bottom = 5.0, -0.2

    def shortcut_and_output(ax: Any, y_from: float, right_x: float) -> None:
        _diagram_arrow(ax, (0, y_from), (0, 1.0))
        _diagram_node(ax, 0, 1.0, "+")
        _diagram_shortcut(ax, (0.85, top), (0, 1.0), right_x, "identity")
        _diagram_arrow(ax, (0, 1.0), (0, bottom + 0.15))
        ax.text(0, bottom, f"{channels}-d out", ha="center", va="top", fontsize=9)

    left.text(0, top, f"{channels}-d in", ha="center", va="center", fontsize=9)
    labels = [
        f"{channels}, 1×1, {resnet_width}",
        f"{resnet_width}, 3×3, {resnet_width}",
        f"{resnet_width}, 1×1, {channels}",
    ]
    _diagram_stack(left, top, list(zip((4.0, 3.0, 2.0), labels)))
    shortcut_and_output(left, 2.0, 1.6)
    _diagram_finish(left, (-2.0, 2.2), (-0.7, 5.3), "ResNet block")

    xs, dots = _diagram_path_columns(shown_paths, cardinality, spacing=1.25)
    right.text(0, top, f"{channels}-d in", ha="center", va="center", fontsize=9)
    ys = (4.0, 3.0, 2.0)
    path_labels = [f"{channels}, 1×1, {d}", f"{d}, 3×3, {d}", f"{d}, 1×1, {channels}"]
    for x in xs:
        _diagram_arrow(right, (0, top), (x, ys[0] + _BOX_EDGE), shrink=(8, 1))
        for i, (y, label) in enumerate(zip(ys, path_labels)):
            _diagram_layer(right, x, y, label, fontsize=7)
            if i:
                _diagram_arrow(right, (x, ys[i - 1]), (x, y))
        _diagram_arrow(right, (x, ys[-1] - _BOX_EDGE), (0, 1.0), shrink=(1, 8))
    if dots is not None:
        for y in ys:
            right.text(dots, y, "…", ha="center", va="center", fontsize=12)
    _diagram_note(
        right,
        xs[0] - 0.6,
        1.0,
        f"total {cardinality} paths,\nsummed with the shortcut",
        ha="left",
    )
    _diagram_node(right, 0, 1.0, "+")
    _diagram_shortcut(right, (0.85, top), (0, 1.0), 3.0, "identity")
    _diagram_arrow(right, (0, 1.0), (0, bottom + 0.15))
    right.text(0, bottom, f"{channels}-d out", ha="center", va="top", fontsize=9)
    _diagram_finish(
        right, (-3.4, 3.5), (-0.7, 5.3), f"ResNeXt block, cardinality {cardinality}"
    )
    fig.suptitle(
        "The ResNeXt paper's Fig. 1, redrawn: layers read (in channels, filter, out channels)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def block_widths_figure(
    in_channels: int = 256,
    planes: int = 64,
    cardinality: int = 32,
    bottleneck_width: int = 4,
) -> Any:
    """One ResNeXt block (form (c)) annotated with its four widths, computed by the package.

    ``planes``; d = int(planes * bottleneck_width / 64), one path's width; the grouped width
    C*d of the grouped 3x3; the output width 4*planes. The grouped 3x3 is drawn as C groups of
    d channels. Returns the Figure; a bad combination raises ``group_conv_width``'s ValueError.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..blocks import EXPANSION, group_conv_width

    width = group_conv_width(planes, cardinality, bottleneck_width)
    d, out = width // cardinality, EXPANSION * planes
    fig, ax = plt.subplots(figsize=(8.2, 5.0))
    ax.text(0, 5.0, f"x: {in_channels} channels", ha="center", va="center", fontsize=9)
    layers = [
        (4.0, f"conv1: {in_channels}, 1×1, {width}", f"C·d = {width} channels"),
        (
            2.8,
            f"conv2: {width}, 3×3, {width}, groups = {cardinality}",
            f"C·d = {width} channels",
        ),
        (1.8, f"conv3: {width}, 1×1, {out}", f"4·planes = {out} channels"),
    ]
    previous = _diagram_stack(ax, 5.0, [(y, label) for y, label, _ in layers])
    for y, _, after in layers:
        _diagram_note(ax, 0.12, y - 0.5, after, ha="left")
    # Left of the grouped 3x3, its channels as C groups of d: the first few, an ellipsis, the last.
    shown = min(cardinality, 6)
    cell, y_strip = 0.34, 2.8
    xs = [-4.3 + i * cell for i in range(shown)]
    for i, x in enumerate(xs):
        if shown < cardinality and i == shown - 2:
            ax.text(x + cell / 2, y_strip, "…", ha="center", va="center", fontsize=9)
            continue
        ax.add_patch(
            Rectangle(
                (x, y_strip - 0.13),
                cell * 0.9,
                0.26,
                facecolor="#d6e4f5",
                edgecolor=_INK,
                lw=0.7,
            )
        )
        ax.text(x + cell * 0.45, y_strip, str(d), ha="center", va="center", fontsize=6)
    _diagram_note(
        ax,
        xs[0],
        y_strip + 0.38,
        f"{cardinality} groups (paths) of d = {d} channels",
        ha="left",
    )
    # A dotted leader: the strip is conv2's channels, split into its groups.
    strip_end = xs[-1] + cell
    ax.plot([strip_end, -1.45], [y_strip, y_strip], ls=":", lw=0.9, color=_NOTE)
    _diagram_arrow(ax, (0, previous), (0, 0.9))
    _diagram_node(ax, 0, 0.9, "+")
    identity = in_channels == out
    _diagram_shortcut(
        ax, (0.85, 5.0), (0, 0.9), 3.3, "identity" if identity else "projection"
    )
    _diagram_arrow(ax, (0, 0.9), (0, 0.05))
    ax.text(0, 0.0, f"y: 4·planes = {out} channels", ha="center", va="top", fontsize=9)
    legend = "\n".join(
        [
            f"planes = {planes}: the stage's base width",
            f"d = int(planes · {bottleneck_width} / 64) = {d}: one path's width",
            f"C·d = {cardinality} · {d} = {width}: the grouped width",
            f"4·planes = {out}: the output width",
        ]
    )
    ax.text(
        -4.3,
        1.0,
        legend,
        ha="left",
        va="center",
        fontsize=8,
        bbox={
            "boxstyle": "round,pad=0.4",
            "facecolor": "white",
            "edgecolor": _NOTE,
            "lw": 0.7,
        },
    )
    _diagram_finish(
        ax,
        (-4.5, 3.8),
        (-0.5, 5.3),
        f"The four widths of one ResNeXt block (C = {cardinality}, planes = {planes})",
    )
    return fig
