"""The page is the lesson: scaffolding (glue() calls, checks that only keep the build honest)
stays out of the reader's sight.

A code cell is reader-visible unless it is tagged remove-* or hide-*. In visible cells a
chapter may show no glue() call and at most VISIBLE_ASSERTS asserts: the one check per idea
that *is* the lesson. The rest live in cells tagged `remove-input` or `remove-cell`, where
they still run.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
HIDDEN = {"remove-input", "remove-cell", "hide-input", "hide-cell"}

# The budget. First edition, chapters 1-5: 109 visible glue() calls and 95 visible asserts.
VISIBLE_GLUE = 0
VISIBLE_ASSERTS = 6

_GLUE = re.compile(r"^\s*glue\(", re.M)
_ASSERT = re.compile(r"^\s*assert\b", re.M)


def visible_scaffolding(nb: nbformat.NotebookNode) -> tuple[int, int]:
    """(glue() calls, assert statements) in the code cells a reader of the page sees."""
    glue = asserts = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or HIDDEN & set(cell.metadata.get("tags", [])):
            continue
        glue += len(_GLUE.findall(cell.source))
        asserts += len(_ASSERT.findall(cell.source))
    return glue, asserts


def test_the_counter_sees_visible_cells_only():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("glue('a', 1)\nassert 1 == 1\n    assert True"),
        nbformat.v4.new_code_cell("glue('b', 2)\nassert 2", metadata={"tags": ["remove-input"]}),
        nbformat.v4.new_code_cell("x = 1  # assert in a comment\nprint('glue(')"),
        nbformat.v4.new_markdown_cell("assert nothing\nglue(nothing)"),
    ]
    assert visible_scaffolding(nb) == (1, 2)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_keeps_its_scaffolding_out_of_sight(path: Path):
    glue, asserts = visible_scaffolding(nbformat.read(path, as_version=4))
    assert glue <= VISIBLE_GLUE, (
        f"{path.name}: {glue} glue() calls in reader-visible cells; move them into a cell "
        "tagged remove-input"
    )
    assert asserts <= VISIBLE_ASSERTS, (
        f"{path.name}: {asserts} asserts in reader-visible cells (budget {VISIBLE_ASSERTS}); "
        "keep the one per idea that is the lesson and move the rest into remove-input cells"
    )
