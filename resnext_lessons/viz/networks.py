"""Figures of chapters 5-7: stage shapes of whole networks, top-k predictions, weight patterns."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


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
