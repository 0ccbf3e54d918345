"""Figures of chapters 8-9: training curves, image grids, similarity between paths."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.9 * ncols + 0.8, (1.15 if labels is not None else 0.95) * nrows + 0.6), squeeze=False)
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


def silencing_figure(curves: Mapping[str, tuple[int, Mapping[int, Sequence[float]]]], title: str) -> Any:
    """Accuracy against channels silenced in one 3x3 layer, per network, on two panels: by the
    number of channels and by the fraction of the layer's channels.

    curves[label] = (width, {channels silenced: [accuracy of each draw, a fraction]}), e.g.
    from ``dissect.silencing_sweep`` (with its counts turned into channels). Points: the mean
    over the draws; error bars: their standard deviation (none for a single draw). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_count, ax_fraction) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for label, (width, sweep) in curves.items():
        if not sweep or any(not 0 <= k <= width for k in sweep):
            raise ValueError(f"{label}: channels silenced must lie in [0, {width}]; got {sorted(sweep)}")
        counts = np.array(sorted(sweep))
        means = np.array([100 * np.mean(sweep[k]) for k in counts])
        stds = np.array([100 * np.std(sweep[k], ddof=1) if len(sweep[k]) > 1 else 0.0 for k in counts])
        for ax, x in ((ax_count, counts), (ax_fraction, counts / width)):
            ax.errorbar(x, means, yerr=stds, fmt="o-", capsize=3, label=f"{label} ({width} channels)")
    ax_count.set(xlabel="channels of the 3x3 silenced", ylabel="test accuracy (%)")
    ax_fraction.set(xlabel="fraction of the 3x3's channels silenced")
    for ax in (ax_count, ax_fraction):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def seed_band_figure(
    experiments: Mapping[str, Mapping[str, Sequence[Sequence[Mapping[str, float]]]]], title: str
) -> Any:
    """Test accuracy and training loss per epoch over several seeds: every run as a thin line,
    the mean over seeds as a thick one, and a band of ± one standard deviation.

    experiments[panel][model]: one history per seed (what ``train.fit`` returns). Each panel
    (e.g. "live run" and "reference run") is one column; its name is the column's title, so
    it should say the data used. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    columns = len(experiments)
    if columns == 0:
        raise ValueError("experiments is empty; pass {panel: {model: [history per seed]}}")
    fig, axes = plt.subplots(2, columns, figsize=(4.6 * columns, 5.6), squeeze=False)
    for col, (panel, models) in enumerate(experiments.items()):
        ax_acc, ax_loss = axes[0, col], axes[1, col]
        for i, (model, histories) in enumerate(models.items()):
            color = f"C{i}"
            if not histories:
                continue
            length = min(len(h) for h in histories)
            epochs = np.arange(1, length + 1)
            for ax, key, scale in ((ax_acc, "test_acc", 100), (ax_loss, "train_loss", 1)):
                values = np.array([[scale * row[key] for row in h[:length]] for h in histories])
                for run in values:
                    ax.plot(epochs, run, color=color, lw=0.6, alpha=0.5)
                mean = values.mean(0)
                std = values.std(0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
                ax.plot(epochs, mean, color=color, lw=2, label=f"{model} (mean of {len(values)})")
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        ax_acc.set(ylabel="test accuracy (%)", title=panel)
        ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)")
        for ax in (ax_acc, ax_loss):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        ax_acc.legend(fontsize=7, title="band: mean ± 1 std over seeds", title_fontsize=7)
    for ax in axes[0, :]:
        ax.title.set_fontsize(9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
