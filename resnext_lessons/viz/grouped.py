"""Figures of chapters 3-4: which channels a grouped convolution connects, and cardinality vs width."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def group_connections_figure(channels: int, groups: Sequence[int], title: str) -> Any:
    """Which input channels each output channel of a convolution reads, one panel per ``groups``.

    Inputs are dots on the left, outputs on the right; a line joins an input to every output
    that reads it, coloured by group. With g groups each output reads channels / g inputs, so a
    panel has channels**2 / g lines. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from ..grouped import check_groups

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


# ------------------------------------------------ bars (chapters 4 and 7: costs side by side)


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
