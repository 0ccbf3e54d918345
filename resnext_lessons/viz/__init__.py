"""Figures and tables for the book's chapters (matplotlib and Markdown).

Each function returns what it draws (a matplotlib Figure, or a Markdown string) so a
notebook can display it, glue it, or save it. One module per group of chapters:
``tables`` (every chapter), ``diagrams`` (1-2), ``grouped`` (3-4), ``networks`` (5-7),
``training`` (8-9), ``roofline`` (10).
"""

from .diagrams import (
    block_forms_figure,
    block_widths_figure,
    bottleneck_figure,
    resnet_resnext_figure,
    split_transform_merge_figure,
)
from .grouped import (
    cardinality_width_figure,
    group_connections_figure,
    grouped_bars_figure,
)
from .networks import stage_shapes_figure, topk_figure, weight_pattern_figure
from .roofline import plot_roofline, reference_roofline_figure
from .tables import markdown_table
from .training import (
    image_grid_figure,
    seed_band_figure,
    silencing_figure,
    similarity_figure,
    training_curves_figure,
)

__all__ = [
    "markdown_table",
    "bottleneck_figure",
    "block_forms_figure",
    "split_transform_merge_figure",
    "resnet_resnext_figure",
    "block_widths_figure",
    "group_connections_figure",
    "cardinality_width_figure",
    "grouped_bars_figure",
    "stage_shapes_figure",
    "topk_figure",
    "weight_pattern_figure",
    "training_curves_figure",
    "image_grid_figure",
    "similarity_figure",
    "silencing_figure",
    "seed_band_figure",
    "plot_roofline",
    "reference_roofline_figure",
]
