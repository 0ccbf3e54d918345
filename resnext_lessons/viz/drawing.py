"""Drawing primitives for the block diagrams: labelled layer boxes, arrows, sum nodes,
shortcuts. The figures themselves are in ``diagrams``."""

from __future__ import annotations

from typing import Any

_INK, _SHORTCUT, _NOTE = "#34495e", "#c0392b", "#555555"


def _diagram_layer(ax: Any, x: float, y: float, text: str, fontsize: float = 8) -> None:
    """A layer: a rounded box centred at (x, y)."""
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        bbox={
            "boxstyle": "round,pad=0.3",
            "facecolor": "#eef3fb",
            "edgecolor": _INK,
            "lw": 1.0,
        },
    )


def _diagram_arrow(
    ax: Any,
    start: tuple[float, float],
    end: tuple[float, float],
    color: str = _INK,
    shrink: tuple[float, float] = (8, 8),
) -> None:
    """An arrow from ``start`` to ``end``, ``shrink`` points short of either end."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 0.9,
            "shrinkA": shrink[0],
            "shrinkB": shrink[1],
        },
    )


# Half the height of a fontsize-7 layer box, in data units of the fan-out figures:
# arrows that fan out to (or in from) a row of boxes end on the box's edge, not inside
# its corner.
_BOX_EDGE = 0.17


def _diagram_node(ax: Any, x: float, y: float, symbol: str = "+") -> None:
    """A merge point: a circle holding its operation (+ for the shortcut's sum, Σ for paths)."""
    ax.text(
        x,
        y,
        symbol,
        ha="center",
        va="center",
        fontsize=10,
        bbox={
            "boxstyle": "circle,pad=0.2",
            "facecolor": "white",
            "edgecolor": _INK,
            "lw": 1.0,
        },
    )


def _diagram_note(ax: Any, x: float, y: float, text: str, ha: str = "center") -> None:
    ax.text(x, y, text, ha=ha, va="center", fontsize=7, color=_NOTE)


def _diagram_shortcut(
    ax: Any,
    start: tuple[float, float],
    node: tuple[float, float],
    right: float,
    label: str,
) -> None:
    """The shortcut: from the block's input at ``start``, down the right-hand side, into ``node``."""
    (start_x, start_y) = start
    ax.plot(
        [start_x, right, right], [start_y, start_y, node[1]], color=_SHORTCUT, lw=1.2
    )
    _diagram_arrow(ax, (right, node[1]), (node[0] + 0.25, node[1]), color=_SHORTCUT)
    ax.text(
        right + 0.1,
        (start_y + node[1]) / 2,
        label,
        rotation=90,
        ha="left",
        va="center",
        fontsize=8,
        color=_SHORTCUT,
    )


def _diagram_finish(
    ax: Any, xlim: tuple[float, float], ylim: tuple[float, float], title: str
) -> None:
    ax.set(xlim=xlim, ylim=ylim)
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def _diagram_path_columns(
    shown: int, cardinality: int, spacing: float
) -> tuple[list[float], float | None]:
    """x positions of the drawn paths (first ``shown - 1`` and the last), and of the ellipsis."""
    shown = min(shown, cardinality)
    if shown == cardinality:
        xs = [spacing * (i - (shown - 1) / 2) for i in range(shown)]
        return xs, None
    xs = [spacing * (i - shown / 2) for i in range(shown + 1)]
    return xs[:-2] + xs[-1:], xs[-2]


def _diagram_stack(
    ax: Any, top: float, rows: list[tuple[float, str]], fontsize: float = 8
) -> float:
    """Layer boxes down the x = 0 axis at heights ``y``, each joined by an arrow to the one
    above it (the first to ``top``). ``rows``: ``(y, label)`` pairs. Returns the last ``y``."""
    previous = top
    for y, label in rows:
        _diagram_arrow(ax, (0, previous), (0, y))
        _diagram_layer(ax, 0, y, label, fontsize=fontsize)
        previous = y
    return previous
