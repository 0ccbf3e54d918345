"""Figures and tables for the book's chapters (matplotlib and Markdown).

Each function returns what it draws (a matplotlib Figure, or a Markdown string) so a
notebook can display it, glue it, or save it. One module per group of chapters:
``tables`` (every chapter), ``diagrams`` (1-2), ``grouped`` (3-4), ``networks`` (5-7),
``training`` (8-9), ``roofline`` (10).
"""

from .tables import markdown_table
from .diagrams import bottleneck_figure
from .diagrams import block_forms_figure
from .diagrams import split_transform_merge_figure
from .grouped import group_connections_figure
from .grouped import cardinality_width_figure
from .grouped import grouped_bars_figure
from .networks import stage_shapes_figure
from .networks import topk_figure
from .networks import weight_pattern_figure
from .training import training_curves_figure
from .training import image_grid_figure
from .training import similarity_figure
from .roofline import plot_roofline

__all__ = [
    "markdown_table",
    "bottleneck_figure",
    "block_forms_figure",
    "split_transform_merge_figure",
    "group_connections_figure",
    "cardinality_width_figure",
    "grouped_bars_figure",
    "stage_shapes_figure",
    "topk_figure",
    "weight_pattern_figure",
    "training_curves_figure",
    "image_grid_figure",
    "similarity_figure",
    "plot_roofline",
]
