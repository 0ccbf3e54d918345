"""The learner notebooks: plain Colab/Jupyter notebooks that the site build writes.

`jupyter-book build .` runs `_ext/learner_notebooks.py`, which writes one notebook per chapter
(and the intro) to `_build/html/notebooks/`. These tests read the session's build (the one
tests/test_book.py's `site` fixture made, through conftest's `site_build`; they build it
themselves if run alone, or read RESNEXT_SITE_HTML=<a built _build/html>) and check each
notebook against its source in book/. The tiny-book tests build a two-page book in a temporary
folder to check that bad input fails the build.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml
from test_book import BUILD_COMMAND  # the strict build the site tests share

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
ORG, REPO = REPO_URL.removeprefix("https://github.com/").split("/")
SITE = (
    CONFIG.get("html", {}).get("baseurl") or f"https://{ORG.lower()}.github.io/{REPO}/"
).rstrip("/") + "/"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))
ROOT_PAGE = "intro"
STEMS = [p.stem for p in CHAPTERS] + [ROOT_PAGE]
HIDDEN_TAGS = ("hide-cell", "hide-input", "remove-input", "remove-cell")

# What must never reach a learner notebook's markdown (the list).
FORBIDDEN = ["{glue", "{cite", "{term", "{doc", "{ref", "{numref", "```{", ":::"]
TARGET = re.compile(r"^\s*\([^)\s]+\)=\s*$", re.MULTILINE)
# In rendered HTML: a role before its code span, a directive as a fenced block's language.
LEAKED = re.compile(
    r"\{[a-z][\w-]*(?::[\w-]+)?\}(?=<code>)|language-\{|\{(?:glue|cite|term|doc|ref|numref|"
    r"exercise|solution|note|tip|warning|important|admonition|eval-rst)\b"
)

by_stem = pytest.mark.parametrize("stem", STEMS)
# Every edition gets its own learner notebooks: the English site's, and the Korean site's
# (`python _ext/korean.py build`, in _build/html/ko/notebooks, opened by the Korean pages).
EDITIONS = {"en": "", "ko": "ko/"}
OPENING = {"en": "computed when the site was built", "ko": "사이트를 빌드할 때"}
by_edition = pytest.mark.parametrize("lang", list(EDITIONS))
by_chapter = pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])


def _markdown_it():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def _source(stem: str) -> Path:
    return BOOK / (f"{stem}.ipynb" if stem != ROOT_PAGE else f"{stem}.md")


def _learner(html_dir: Path, stem: str) -> nbformat.NotebookNode:
    path = html_dir / "notebooks" / f"{stem}.ipynb"
    assert path.exists(), f"the build wrote no learner notebook {path}"
    return nbformat.read(path, as_version=4)


def _code(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def _rendered_text(nb: nbformat.NotebookNode) -> str:
    from bs4 import BeautifulSoup

    md = _markdown_it().enable("table")
    html = "\n".join(md.render(source) for source in _markdown(nb))
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


# A site built elsewhere (`jupyter-book build . --path-output /tmp/x`, then
# RESNEXT_SITE_HTML=/tmp/x/_build/html): these tests read it instead of building the book.
SITE_HTML_ENV = "RESNEXT_SITE_HTML"
_BUILT: dict[str, tuple] = {}


@pytest.fixture
def html_dir(site_build) -> Path:
    """The session's site: tests/test_book.py's build (conftest's `site_build`) if it ran."""
    if os.environ.get(SITE_HTML_ENV):
        html = Path(os.environ[SITE_HTML_ENV]).resolve()
        assert (html / "index.html").exists(), f"{SITE_HTML_ENV}={html}: no built site"
        return html
    if site_build is None and "build" not in _BUILT:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            pytest.skip(
                "the site tests need every notebook run first: `pytest -p no:xdist`"
            )
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        command = [str(jupyter_book), *BUILD_COMMAND]
        built = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=3600
        )
        _BUILT["build"] = (
            built.returncode,
            built.stdout + built.stderr,
            ROOT / "_build" / "html",
        )
    returncode, log, html = site_build or _BUILT["build"]
    assert returncode == 0, f"the site build failed:\n{log[-6000:]}"
    return Path(html)


@pytest.fixture
def edition_html(lang, html_dir, request) -> Path:
    """The site of one edition: the English one, or the Korean one beside it."""
    if lang == "en":
        return html_dir
    returncode, log, html = request.getfixturevalue("korean_site")
    assert returncode == 0, f"the Korean build failed:\n{log[-6000:]}"
    return Path(html)


@pytest.mark.site
@by_edition
@by_stem
def test_learner_notebook_is_valid_and_has_no_outputs(edition_html, stem):
    nb = _learner(edition_html, stem)
    assert nb.nbformat == 4
    nbformat.validate(nb)
    for cell in _code(nb):
        assert cell.outputs == [] and cell.execution_count is None


def _source_notebook(stem: str) -> nbformat.NotebookNode:
    """The notebook myst-nb reads: an .ipynb, or a MyST Markdown notebook (intro.md)."""
    path = _source(stem)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text()
    if not is_myst_markdown_notebook(text):
        return nbformat.v4.new_notebook()  # a plain page: no code cells
    return read_myst_markdown_notebook(text)


@pytest.mark.site
@by_edition
@by_stem
def test_code_cells_are_the_sources_code_cells(edition_html, stem):
    """Character for character, in order; hidden cells only gain `# @title` (a Colab form)."""
    source = _code(_source_notebook(stem))
    learner = _code(_learner(edition_html, stem))
    assert len(learner) == len(source)
    for index, (src, out) in enumerate(zip(source, learner)):
        hidden = any(tag in src.metadata.get("tags", []) for tag in HIDDEN_TAGS)
        text = out.source
        if hidden:
            first, _, text = text.partition("\n")
            assert first.startswith("# @title "), f"code cell {index}: {first!r}"
            assert out.metadata.get("cellView") == "form"
        else:
            assert "cellView" not in out.metadata
        assert text == src.source, f"code cell {index} differs from the source"


@pytest.mark.site
@by_edition
@by_stem
def test_markdown_holds_no_myst(edition_html, stem):
    for index, source in enumerate(_markdown(_learner(edition_html, stem))):
        found = [token for token in FORBIDDEN if token in source]
        found += TARGET.findall(source)
        assert not found, f"markdown cell {index}: {found}\n{source[:500]}"


@pytest.mark.site
@by_edition
@by_stem
def test_commonmark_rendering_leaks_no_role_or_directive(edition_html, stem):
    md = _markdown_it()
    for index, source in enumerate(_markdown(_learner(edition_html, stem))):
        leaked = LEAKED.findall(md.render(source))
        assert not leaked, f"markdown cell {index} renders {leaked}"


@pytest.mark.site
@by_edition
@by_stem
def test_every_glued_value_on_the_page_is_in_the_notebook(edition_html, stem):
    from bs4 import BeautifulSoup

    page = BeautifulSoup(
        (edition_html / "book" / f"{stem}.html").read_text(), "html.parser"
    )
    article = page.select_one("article")
    # Values glued into the prose (values inside code cells' outputs are not prose).
    pasted = Counter(
        " ".join(span.get_text(" ").split())
        for span in article.select(".pasted-text, .pasted-inline, .pasted-md")
        if not span.find_parent(class_="cell")
    )
    assert pasted, "the page shows no glued value"
    text = _rendered_text(_learner(edition_html, stem))
    missing = {v: n for v, n in pasted.items() if v and text.count(v) < n}
    assert not missing, f"glued on the page (times) but not in the notebook: {missing}"


def _links(nb: nbformat.NotebookNode) -> list[str]:
    from bs4 import BeautifulSoup

    md = _markdown_it().enable("table")
    html = "\n".join(md.render(source) for source in _markdown(nb))
    return [
        a["href"] for a in BeautifulSoup(html, "html.parser").find_all("a", href=True)
    ]


@pytest.mark.site
@by_edition
@by_stem
def test_links_point_at_pages_the_site_built(edition_html, lang, stem):
    html_dir = (
        edition_html.parent if EDITIONS[lang] else edition_html
    )  # the English root
    nb = _learner(edition_html, stem)
    written = _source(stem).read_text()  # external links the authors wrote themselves
    problems = []
    links = _links(nb)
    for href in links:
        if href.startswith("#"):
            continue
        if not href.startswith(SITE):
            if href not in written:
                problems.append(f"{href}: neither on {SITE} nor written in the source")
            continue
        if not href.startswith(SITE + EDITIONS[lang]):
            problems.append(f"{href}: a page of another edition")
        parts = urlsplit(href[len(SITE) :])
        page = html_dir / (parts.path or "index.html")
        if not page.is_file():
            problems.append(f"{href}: the build produced no {parts.path}")
        elif parts.fragment and f'id="{parts.fragment}"' not in page.read_text():
            problems.append(f"{href}: no #{parts.fragment} on {parts.path}")
    assert not problems, "\n".join(problems)
    opening = nb.cells[0]
    assert opening.cell_type == "markdown" and opening.source.startswith("# ")
    assert f"{SITE}{EDITIONS[lang]}book/{stem}.html" in opening.source, (
        "the opening links to its page"
    )
    assert OPENING[lang] in opening.source


@pytest.mark.site
def test_chapters_cite_and_define_with_links_to_the_site(html_dir):
    links = [
        href for path in CHAPTERS for href in _links(_learner(html_dir, path.stem))
    ]
    assert any(h.startswith(f"{SITE}book/references.html#") for h in links), (
        "no citation"
    )
    assert any(h.startswith(f"{SITE}book/glossary.html#term-") for h in links), (
        "no term"
    )
    texts = " ".join(_rendered_text(_learner(html_dir, p.stem)) for p in CHAPTERS)
    # get_text(" ") puts a space around inline markup: "( Xie et al. , 2017 )".
    assert re.search(r"\(\s*Xie\s+et\s+al\.\s*,\s*2017\s*\)", texts), (
        "citations read (Xie et al., 2017)"
    )
    assert re.search(r"\bExercise 1: ", texts), (
        "exercises are headed 'Exercise N: title'"
    )
    assert "<summary>Solution</summary>" in "".join(
        "".join(_markdown(_learner(html_dir, p.stem))) for p in CHAPTERS
    )


@pytest.mark.site
@by_edition
@by_chapter
def test_colab_button_opens_the_learner_notebook(edition_html, lang, path):
    from bs4 import BeautifulSoup

    page = BeautifulSoup(
        (edition_html / "book" / f"{path.stem}.html").read_text(), "html.parser"
    )
    notebook = f"{EDITIONS[lang]}{path.stem}.ipynb"
    colab = f"https://colab.research.google.com/github/{ORG}/{REPO}/blob/notebooks/{notebook}"
    assert (edition_html / "notebooks" / f"{path.stem}.ipynb").exists()
    assert page.find("a", href=colab), f"no Colab button to {colab}"
    assert not page.find(
        "a", href=re.compile(r"colab\.research\.google\.com/.*/blob/main/")
    )


@by_chapter
def test_first_code_cell_installs_the_package_only_in_colab(path):
    first = _code(nbformat.read(path, as_version=4))[0]
    tree = ast.parse(first.source)
    target = f"resnext-lessons[data] @ git+{REPO_URL}"

    def installs(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Constant) and n.value == target for n in ast.walk(node)
        )

    guarded = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and ast.unparse(node.test) == "'google.colab' in sys.modules"
    ]
    assert len(guarded) == 1 and installs(guarded[0]), (
        "install inside `if 'google.colab' ...`"
    )
    outside = [node for node in tree.body if node is not guarded[0]]
    assert not any(installs(node) for node in outside), "install only in Colab"
    assert not any(installs(node) for node in guarded[0].orelse)


def test_pages_workflow_publishes_the_notebooks_branch_colab_opens():
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import learner_notebooks
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    extensions = CONFIG["sphinx"]["local_extensions"]
    assert extensions["learner_notebooks"] in ("_ext", "_ext/")
    text = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    workflow = yaml.safe_load(text)
    build = workflow["jobs"]["build"]
    assert build["permissions"]["contents"] == "write"
    steps = "\n".join(step.get("run", "") for step in build["steps"])
    assert f"cp -r _build/html/{learner_notebooks.OUTPUT_DIR} " in steps
    assert f"cp -r _build/html/ko/{learner_notebooks.OUTPUT_DIR} " in steps  # the Korean ones
    assert f"HEAD:{learner_notebooks.BRANCH}" in steps
    # the notebooks are published before the site, from the same build
    names = [step.get("name", step.get("uses", "")) for step in build["steps"]]
    publish = next(i for i, n in enumerate(names) if "learner notebooks" in n.lower())
    assert publish < next(
        i for i, n in enumerate(names) if "upload-pages-artifact" in n
    )


# --- bad input: the converter refuses it -----------------------------------------------------

_TINY_CONFIG = """\
title: tiny
only_build_toc_files: true
execute:
  execute_notebooks: "off"
repository:
  url: https://github.com/example/tiny
bibtex_bibfiles: [refs.bib]
sphinx:
  extra_extensions: [sphinx_exercise]
  local_extensions:
    learner_notebooks: {ext}
"""
_TINY_GOOD = """\
A *note* on $x^2$, `code`, [a link](https://example.org/) and {ref}`count`.

```{note}
Noted.
```

```{exercise} Count the paths
:label: count
How many?
```

```{solution} count
:class: dropdown
Thirty-two.
```
"""


def _tiny_book(tmp_path: Path, markdown: str) -> tuple[int, str, Path]:
    (tmp_path / "_config.yml").write_text(_TINY_CONFIG.format(ext=ROOT / "_ext"))
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n- file: ch\n"
    )
    (tmp_path / "intro.md").write_text("# Tiny\n\nA page.\n")
    (tmp_path / "refs.bib").write_text("")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 1. A chapter"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell(markdown),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "ch.ipynb")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    built = subprocess.run(
        [str(jupyter_book), "build", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    notebook = tmp_path / "_build" / "html" / "notebooks" / "ch.ipynb"
    return built.returncode, built.stdout + built.stderr, notebook


def test_converter_writes_plain_markdown_for_a_tiny_book(tmp_path):
    returncode, log, notebook = _tiny_book(tmp_path, _TINY_GOOD)
    assert returncode == 0, log[-3000:]
    nb = nbformat.read(notebook, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert nb.cells[1].source == "x = 1"
    text = nb.cells[2].source
    assert "> **Note**\n>\n> Noted." in text
    assert "> **Exercise 1: Count the paths**\n>\n> How many?" in text
    assert "<details><summary>Solution</summary>\n\nThirty-two.\n\n</details>" in text
    assert "[Exercise 1](https://example.github.io/tiny/ch.html#count)" in text
    assert "[a link](https://example.org/)" in text and "$x^2$" in text


@pytest.mark.parametrize(
    "markdown, named",
    [
        (
            "The value is {glue:text}`no_such_key:.2f`.",
            "ch, cell 2: {glue:text}`no_such_key",
        ),
        ("```{figure} x.png\nA figure.\n```", "ch, cell 2: the directive {figure}"),
        ("Raw <b>HTML</b>.", "ch, cell 2: raw html"),
        ("See {numref}`count`.", "ch, cell 2: the role {numref}"),
    ],
    ids=["missing-glue-key", "unknown-directive", "raw-html", "unknown-role"],
)
def test_bad_input_fails_the_build_and_writes_no_notebook(tmp_path, markdown, named):
    returncode, log, notebook = _tiny_book(tmp_path, markdown)
    assert returncode != 0, log[-3000:]
    assert "Learner notebook error" in log and named in log, log[-3000:]
    assert not notebook.exists()
