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
