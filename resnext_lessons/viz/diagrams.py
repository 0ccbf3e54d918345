"""Block diagrams of chapters 1-2: the ResNet bottleneck, the paper's three equivalent forms,
split-transform-merge."""

from __future__ import annotations

from typing import Any

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
