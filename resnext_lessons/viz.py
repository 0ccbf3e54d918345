"""Figures and tables for the book's chapters (matplotlib and Markdown).

Each function returns what it draws (a matplotlib Figure, or a Markdown string) so a
notebook can display it, glue it, or save it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = [
    "markdown_table",
    "plot_roofline",
    "stage_shapes_figure",
    "grouped_bars_figure",
    "topk_figure",
    "weight_pattern_figure",
    "group_connections_figure",
    "cardinality_width_figure",
    "bottleneck_figure",
    "block_forms_figure",
    "split_transform_merge_figure",
    "training_curves_figure",
    "image_grid_figure",
    "similarity_figure",
]


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A Markdown table: one header row, then ``rows``; ints get thousands separators."""

    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def plot_roofline(peak: dict[str, Any], sweep: Sequence[dict[str, Any]], config: Any, device_label: str, ax: Any = None) -> Any:
    """A grouped-convolution sweep on a roofline (Williams et al., 2009).

    ``peak`` from ``bench.measure_peak``, ``sweep`` from ``bench.grouped_conv_sweep``, ``config``
    the ``bench.BenchConfig`` that made them. x: arithmetic intensity (FLOP per byte moved),
    y: achieved FLOP/s, both log-scaled. The roof is the measured peak (matrix product or 1x1 conv), its slope the
    measured bandwidth (copy); each point is one groups value, one marker per memory format.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from .bench import attainable_flops_per_s

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    intensities = [r["flops_per_byte"] for r in sweep] + [peak["ridge_flops_per_byte"]]
    lo, hi = min(intensities) / 2, max(intensities) * 2
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(xs, [attainable_flops_per_s(x, peak) for x in xs], "k-", lw=1.5, label="roofline (measured)")
    # Below the roof, at its left end: the measured points sit on or above it further right.
    ax.annotate(f"peak {peak['flops_per_s'] / 1e9:,.0f} GFLOP/s (measured)", (peak["ridge_flops_per_byte"], peak["flops_per_s"]),
                textcoords="offset points", xytext=(4, -12), ha="left", fontsize=8)
    ax.annotate(f"{peak['bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s (copy)", (lo, lo * peak["bandwidth_bytes_per_s"]),
                textcoords="offset points", xytext=(2, 6), fontsize=8)
    for fmt, marker in (("nchw", "o"), ("channels_last", "s")):
        own = [r for r in sweep if r["memory_format"] == fmt]
        points = ax.scatter(
            [r["flops_per_byte"] for r in own], [2 * r["macs_per_s"] for r in own], marker=marker, label=fmt, zorder=3
        )
        if fmt == "nchw":
            for r in own:
                ax.annotate(f"g={r['groups']}", (r["flops_per_byte"], 2 * r["macs_per_s"]),
                            textcoords="offset points", xytext=(4, -10), fontsize=7, color=points.get_facecolor()[0])
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)", ylabel="achieved FLOP/s")
    ax.set_title(
        f"3x3 conv {config.channels}->{config.channels} ch, {config.size}x{config.size}, "
        f"batch {config.sweep_batch}, {config.sweep_dtype}\non {device_label}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


# ----------------------------------------------------------------------- block diagrams (ch. 1-2)
# Drawn in data coordinates on axis-free Axes, data flowing from the input at the top to the
# output at the bottom, as in the papers' figures. Layers are labelled in the ResNeXt paper's
# notation: (input channels, filter size, output channels).
_INK, _SHORTCUT, _NOTE = "#34495e", "#c0392b", "#555555"


def _diagram_layer(ax: Any, x: float, y: float, text: str, fontsize: float = 8) -> None:
    """A layer: a rounded box centred at (x, y)."""
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "#eef3fb", "edgecolor": _INK, "lw": 1.0})


def _diagram_arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], color: str = _INK) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 0.9, "shrinkA": 8, "shrinkB": 8})


def _diagram_node(ax: Any, x: float, y: float, symbol: str = "+") -> None:
    """A merge point: a circle holding its operation (+ for the shortcut's sum, Σ for paths)."""
    ax.text(x, y, symbol, ha="center", va="center", fontsize=10,
            bbox={"boxstyle": "circle,pad=0.2", "facecolor": "white", "edgecolor": _INK, "lw": 1.0})


def _diagram_note(ax: Any, x: float, y: float, text: str, ha: str = "center") -> None:
    ax.text(x, y, text, ha=ha, va="center", fontsize=7, color=_NOTE)


def _diagram_shortcut(ax: Any, start: tuple[float, float], node: tuple[float, float], right: float, label: str) -> None:
    """The shortcut: from the block's input at ``start``, down the right-hand side, into ``node``."""
    (start_x, start_y) = start
    ax.plot([start_x, right, right], [start_y, start_y, node[1]], color=_SHORTCUT, lw=1.2)
    _diagram_arrow(ax, (right, node[1]), (node[0] + 0.25, node[1]), color=_SHORTCUT)
    ax.text(right + 0.1, (start_y + node[1]) / 2, label, rotation=90, ha="left", va="center",
            fontsize=8, color=_SHORTCUT)


def _diagram_finish(ax: Any, xlim: tuple[float, float], ylim: tuple[float, float], title: str) -> None:
    ax.set(xlim=xlim, ylim=ylim)
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def bottleneck_figure(in_channels: int = 256, planes: int = 64, stride: int = 1, expansion: int = 4) -> Any:
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
    layers = [(f"{in_channels}, 1×1, {planes}", "reduce", "BN, ReLU"),
              (f"{planes}, 3×3, {planes}{strided}", "transform", "BN, ReLU"),
              (f"{planes}, 1×1, {out}", "expand", "BN")]
    previous = 5.0
    for y, (label, role, after) in zip((4.0, 3.0, 2.0), layers):
        _diagram_arrow(ax, (0, previous), (0, y))
        _diagram_layer(ax, 0, y, label, fontsize=9)
        _diagram_note(ax, -1.4, y, role, ha="right")
        _diagram_note(ax, 0.15, y - 0.45, after, ha="left")
        previous = y
    _diagram_arrow(ax, (0, previous), (0, 1.0))
    _diagram_node(ax, 0, 1.0, "+")
    projection = stride != 1 or in_channels != out
    shortcut = f"projection: {in_channels}, 1×1, {out}{strided}" if projection else "identity"
    _diagram_shortcut(ax, (0.85, 5.0), (0, 1.0), 1.3, shortcut)
    _diagram_arrow(ax, (0, 1.0), (0, 0.0))
    _diagram_note(ax, 0.15, 0.5, "ReLU", ha="left")
    ax.text(0, -0.05, f"y: {out} channels", ha="center", va="top", fontsize=9)
    _diagram_finish(ax, (-2.3, 1.9), (-0.5, 5.3), "ResNet bottleneck block")
    return fig


def _diagram_path_columns(shown: int, cardinality: int, spacing: float) -> tuple[list[float], float | None]:
    """x positions of the drawn paths (first ``shown - 1`` and the last), and of the ellipsis."""
    shown = min(shown, cardinality)
    if shown == cardinality:
        xs = [spacing * (i - (shown - 1) / 2) for i in range(shown)]
        return xs, None
    xs = [spacing * (i - shown / 2) for i in range(shown + 1)]
    return xs[:-2] + xs[-1:], xs[-2]


def block_forms_figure(channels: int = 256, cardinality: int = 32, d: int = 4, shown_paths: int = 3) -> Any:
    """The ResNeXt paper's Fig. 3: one block drawn in its three equivalent forms.

    (a) C paths of 1x1 -> 3x3 -> 1x1 whose outputs are summed, then BN;
    (b) C paths of 1x1 -> 3x3, concatenated, then one 1x1;
    (c) a dense 1x1, a grouped 3x3 (groups = C), a dense 1x1.
    ``shown_paths`` paths are drawn (the last one after an ellipsis). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    for name, value in (("cardinality", cardinality), ("d", d), ("shown_paths", shown_paths)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}.")
    width = cardinality * d
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.8))
    xs, dots = _diagram_path_columns(shown_paths, cardinality, spacing=1.25)
    top, bottom = 6.0, -0.2

    def paths(ax: Any, labels: list[str]) -> float:
        """Draw the paths' layers; returns the y of the last one."""
        ys = [5.0 - i for i in range(len(labels))]
        for x in xs:
            _diagram_arrow(ax, (0, top), (x, ys[0]))
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
    last = paths(ax, [f"{channels}, 1×1, {d}", f"{d}, 3×3, {d}", f"{d}, 1×1, {channels}"])
    for x in xs:
        _diagram_arrow(ax, (x, last), (0, 2.0))
    _diagram_node(ax, 0, 2.0, "Σ")
    _diagram_note(ax, 0.15, 1.5, "BN", ha="left")
    merge(ax, 2.0)
    _diagram_finish(ax, (-3.2, 3.4), (-0.7, 6.3), "(a) aggregated transformations: C paths, summed")

    ax = axes[1]
    last = paths(ax, [f"{channels}, 1×1, {d}", f"{d}, 3×3, {d}"])
    for x in xs:
        _diagram_arrow(ax, (x, last), (0, 3.0))
    _diagram_layer(ax, 0, 3.0, f"concatenate → {width}", fontsize=7)
    _diagram_arrow(ax, (0, 3.0), (0, 2.0))
    _diagram_layer(ax, 0, 2.0, f"{width}, 1×1, {channels}", fontsize=7)
    _diagram_note(ax, 0.15, 1.5, "BN", ha="left")
    merge(ax, 2.0)
    _diagram_finish(ax, (-3.2, 3.4), (-0.7, 6.3), "(b) early concatenation")

    ax = axes[2]
    labels = [f"{channels}, 1×1, {width}", f"{width}, 3×3, {width}, groups = {cardinality}", f"{width}, 1×1, {channels}"]
    previous = top
    for y, label in zip((5.0, 4.0, 3.0), labels):
        _diagram_arrow(ax, (0, previous), (0, y))
        _diagram_layer(ax, 0, y, label, fontsize=8)
        previous = y
    _diagram_note(ax, 0.15, 2.5, "BN", ha="left")
    merge(ax, 3.0)
    _diagram_finish(ax, (-3.2, 3.4), (-0.7, 6.3), "(c) grouped convolution")
    fig.suptitle(f"One ResNeXt block, three equivalent forms (C = {cardinality}, d = {d})", fontsize=10)
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
        left.text(x * 0.55, 2.05, weight.replace("x", "w"), ha="center", va="center", fontsize=8, color=_NOTE,
                  bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    if inputs > 2:
        left.text((xs[-2] + xs[-1]) / 2, 3.0, "…", ha="center", va="center", fontsize=12)
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
        right.text((cs[-2] + cs[-1]) / 2, 2.05, "…", ha="center", va="center", fontsize=12)
    _diagram_node(right, 0, 1.0, "+")
    _diagram_shortcut(right, (0.2, 3.0), (0, 1.0), 2.2, "identity")
    _diagram_arrow(right, (0, 1.0), (0, 0.0))
    right.text(0, -0.1, r"$y = x + \sum_{i=1}^{C} T_i(x)$", ha="center", va="top", fontsize=10)
    _diagram_finish(right, (-2.7, 2.8), (-0.7, 3.4), "aggregated transformations")
    fig.tight_layout()
    return fig


def stage_shapes_figure(
    stage_names: Sequence[str], shapes: Mapping[str, Sequence[tuple[int, int]]], title: str
) -> Any:
    """Feature-map side and channels after each stage, one line per network (the Table 1 template).

    shapes[label][i] = (channels, side) of stage i's output, a (N, channels, side, side) tensor.
    Both axes are log2-scaled, so "halve the side, double the channels" draws as two straight lines.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, (ax_side, ax_channels) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, rows in shapes.items():
        if len(rows) != len(stage_names):
            raise ValueError(f"{label!r} has {len(rows)} stages of shapes but there are {len(stage_names)} stage names.")
        for ax, values in ((ax_side, [side for _, side in rows]), (ax_channels, [ch for ch, _ in rows])):
            (line,) = ax.plot(list(stage_names), values, "o-", label=label)
            for x, v in zip(stage_names, values):
                ax.annotate(f"{v}", (x, v), textcoords="offset points", xytext=(0, 6), ha="center",
                            fontsize=7, color=line.get_color())
    ax_side.set(ylabel="feature-map side (pixels)", title="resolution")
    ax_channels.set(ylabel="channels", title="width")
    for ax in (ax_side, ax_channels):
        ax.set_yscale("log", base=2)
        ax.margins(y=0.2)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def grouped_bars_figure(
    categories: Sequence[str], panels: Mapping[str, Mapping[str, Sequence[float]]], title: str
) -> Any:
    """Side-by-side bars: one panel per measure, one group of bars per category, one bar per series.

    panels[measure][series][i] is the value of ``series`` for ``categories[i]``, e.g.
    ``{"parameters (M)": {"ResNet-50": [...], "ResNeXt-50": [...]}}``. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    positions = range(len(categories))
    for ax, (measure, series) in zip(axes[0], panels.items()):
        width = 0.8 / max(1, len(series))
        for k, (label, values) in enumerate(series.items()):
            if len(values) != len(categories):
                raise ValueError(
                    f"{measure!r} / {label!r} has {len(values)} values but there are {len(categories)} categories."
                )
            ax.bar([p + (k - (len(series) - 1) / 2) * width for p in positions], values, width, label=label)
        ax.set_xticks(list(positions), list(categories), fontsize=8)
        ax.set(ylabel=measure)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def topk_figure(image: Any, labels: Sequence[str], probabilities: Sequence[float], title: str) -> Any:
    """A photograph beside a horizontal bar chart of a classifier's top-k classes.

    image: (H, W, 3) array in [0, 1] or uint8; labels and probabilities in decreasing order.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities; give one per class.")
    fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 1.3]})
    ax_image.imshow(image)
    ax_image.axis("off")
    ranks = list(range(len(labels)))[::-1]  # the most probable class on top
    bars = ax_bars.barh(ranks, list(probabilities))
    ax_bars.bar_label(bars, [f"{p:.1%}" for p in probabilities], padding=3, fontsize=8)
    ax_bars.set_yticks(ranks, list(labels), fontsize=8)
    ax_bars.set(xlabel="probability", xlim=(0, 1))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def weight_pattern_figure(weights: Mapping[str, Any], title: str) -> Any:
    """Which input channels feed which output channels: a dark cell where a weight can be non-zero.

    weights[label]: a (C_out, C_in, kH, kW) tensor in dense layout (a grouped layer's weight goes
    through ``grouped.block_diagonal_weight`` first). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(weights), figsize=(4.2 * len(weights), 3.0), squeeze=False)
    for ax, (label, weight) in zip(axes[0], weights.items()):
        if weight.dim() != 4:
            raise ValueError(f"{label!r}: weight must be (C_out, C_in, kH, kW); got {tuple(weight.shape)}.")
        connected = (weight.detach() != 0).flatten(2).any(dim=2).cpu().numpy()
        ax.imshow(connected, cmap="Greys", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
        ax.set(xlabel=f"input channel ({weight.shape[1]})", ylabel=f"output channel ({weight.shape[0]})", title=label)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def group_connections_figure(channels: int, groups: Sequence[int], title: str) -> Any:
    """Which input channels each output channel of a convolution reads, one panel per ``groups``.

    Inputs are dots on the left, outputs on the right; a line joins an input to every output
    that reads it, coloured by group. With g groups each output reads channels / g inputs, so a
    panel has channels**2 / g lines. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from .grouped import check_groups

    for g in groups:
        check_groups(channels, channels, g)
    fig, axes = plt.subplots(1, len(groups), figsize=(2.3 * len(groups), 3.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ys = [channels - 1 - i for i in range(channels)]  # channel 0 at the top
    for ax, g in zip(axes[0], groups):
        per_group = channels // g
        for out in range(channels):
            group = out // per_group
            for inp in range(group * per_group, (group + 1) * per_group):
                ax.plot([0, 1], [ys[inp], ys[out]], color=colors[group % len(colors)], lw=0.8, alpha=0.7)
        ax.scatter([0] * channels + [1] * channels, ys + ys, s=14, color="black", zorder=3)
        ax.set_title(f"groups={g}: {per_group} input{'s' if per_group > 1 else ''}\nper output", fontsize=9)
        ax.set_xticks([0, 1], ["input", "output"], fontsize=8)
        ax.set_yticks([])
        ax.set_xlim(-0.2, 1.2)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def cardinality_width_figure(settings: Sequence[tuple[int, int]], title: str) -> Any:
    """Each (C, d) setting as C paths of width d laid side by side: one bar of C boxes per setting.

    A box's width is d channels, so a bar's length is the grouped 3x3's width C*d (the paper's
    Table 2 "width of group conv."). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.55 * len(settings)))
    colors = ("#1f77b4", "#ff7f0e")
    for row, (cardinality, d) in enumerate(settings):
        y = len(settings) - 1 - row  # the first setting on top
        for path in range(cardinality):
            ax.add_patch(Rectangle((path * d, y - 0.35), d, 0.7, facecolor=colors[path % 2], edgecolor="white", lw=0.5))
        ax.annotate(f"C·d = {cardinality * d}", (cardinality * d, y), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(range(len(settings))[::-1], [f"{c}×{d}d" for c, d in settings], fontsize=9)
    widest = max(c * d for c, d in settings)
    ax.set(xlim=(0, widest * 1.18), ylim=(-0.6, len(settings) - 0.4),
           xlabel="channels of the grouped 3×3: C paths, d channels each")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- chapters 7 and 8's figures
def training_curves_figure(histories: Mapping[str, Sequence[Mapping[str, float]]], title: str) -> Any:
    """Training loss and test accuracy per epoch, one line per run, on two panels.

    histories[label]: what ``train.fit`` returns (rows with ``epoch``, ``train_loss``,
    ``test_acc``). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, history in histories.items():
        epochs = [row["epoch"] for row in history]
        ax_loss.plot(epochs, [row["train_loss"] for row in history], "o-", label=label)
        ax_acc.plot(epochs, [100 * row["test_acc"] for row in history], "o-", label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def image_grid_figure(
    images: Any, title: str, ncols: int = 8, labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None, cmap: str = "gray",
) -> Any:
    """Small images in a grid, row by row.

    images: (N, 3, H, W) colour in [0, 1], or (N, H, W) maps such as filters or feature maps,
    each drawn on its own colour scale. labels: one caption per image; row_labels: one per row.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    images = images.detach().float().cpu()
    if images.dim() not in (3, 4) or (images.dim() == 4 and images.shape[1] != 3):
        raise ValueError(f"images must be (N, 3, H, W) or (N, H, W); got {tuple(images.shape)}.")
    n = images.shape[0]
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.9 * ncols + 0.8, 0.95 * nrows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        if images.dim() == 4:
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            ax.imshow(images[i].numpy(), cmap=cmap)
        if labels is not None:
            ax.set_title(labels[i], fontsize=7)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def similarity_figure(matrix: Any, title: str, label: str = "group") -> Any:
    """A square matrix of similarities in [-1, 1] (e.g. cosine similarity between groups) as a heatmap.

    matrix: (G, G). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    matrix = matrix.detach().float().cpu()
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square (G, G); got {tuple(matrix.shape)}.")
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    shown = ax.imshow(matrix.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(shown, ax=ax, label="cosine similarity")
    ax.set(xlabel=label, ylabel=label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
