"""Markdown tables that every chapter's cells display."""

from __future__ import annotations

from typing import Any, Sequence


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A Markdown table: one header row, then ``rows``; ints get thousands separators."""

    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
