"""The book's code is formatted to the site's code column: 88 characters (pyproject.toml's ruff).

At 1440 px the theme's text column holds 88 characters of code; a longer line scrolls sideways
on the site (tests/test_browser.py checks the rendered pages too). Fix with `ruff format book`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: `pip install -r requirements.txt`")


@pytest.mark.parametrize(
    "args, fix",
    [
        (["format", "--check", "book"], "ruff format book"),
        (
            ["check", "--select", "E501", "--output-format", "concise", "book"],
            "ruff format book, then shorten the lines it cannot (strings, comments)",
        ),
    ],
    ids=["ruff-format", "line-length-88"],
)
def test_book_code_fits_the_code_column(args, fix):
    ran = subprocess.run([*_ruff(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"`ruff {' '.join(args)}` failed (fix: `{fix}`):\n{(ran.stdout + ran.stderr)[-6000:]}"
