"""Tests for the book itself: configuration, notebook conventions, workflows, and the built site.

The `site` tests build the book with `jupyter-book build . --all -W -n --keep-going` and read the HTML.
They run after every notebook of the session (see conftest.py), so the build renders the
executions nbmake just cached instead of running the notebooks again.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
BRANCH = CONFIG["repository"]["branch"]
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
PAGES = sorted(BOOK.glob("*.md"))
WORKFLOWS = ROOT / ".github" / "workflows"
EXPLORER_CHAPTERS = ("04_cardinality_vs_width",)
EXPLORER_MARKER = 'data-explorer="cardinality-width"'
BUILD_COMMAND = ["build", ".", "--all", "-W", "-n", "--keep-going"]

by_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def markdown(nb: nbformat.NotebookNode) -> str:
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def string_constants(source: str) -> list[str]:
    """Every string literal in a code cell, implicit concatenations joined (as Python does)."""
    return [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


# --- configuration ---------------------------------------------------------------------------


def test_config_executes_from_the_cache_that_conftest_fills(jupyter_cache_dir):
    execute = CONFIG["execute"]
    assert execute["execute_notebooks"] == "cache"
    assert execute["allow_errors"] is False
    assert 0 < execute["timeout"] <= 600
    # conftest.py writes to jupyter-book's default cache; a custom `cache` would split the two.
    assert not execute.get("cache"), "leave execute.cache unset (conftest.py relies on the default)"
    assert jupyter_cache_dir == ROOT / "_build" / ".jupyter_cache"


def test_config_builds_offline_and_only_toc_pages():
    assert CONFIG["only_build_toc_files"] is True
    sphinx = CONFIG.get("sphinx", {})
    extensions = sphinx.get("extra_extensions", [])
    assert "sphinx_exercise" in extensions
    assert not any("intersphinx" in ext for ext in extensions), "the build machine is offline"
    assert "intersphinx_mapping" not in sphinx.get("config", {})
    for pattern in ["_build", "**/.ipynb_checkpoints", "tests", "README.md", "CONTRIBUTING.md"]:
        assert pattern in CONFIG["exclude_patterns"]


def test_config_launches_colab_from_the_repository():
    assert REPO_URL.startswith("https://github.com/")
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True
    assert CONFIG["bibtex_bibfiles"] == ["book/references.bib"]
    assert (ROOT / "book" / "references.bib").exists()


def _toc_files(entry) -> list[str]:
    if isinstance(entry, dict):
        found = [entry["file"]] if "file" in entry else []
        return found + [f for value in entry.values() for f in _toc_files(value)]
    if isinstance(entry, list):
        return [f for value in entry for f in _toc_files(value)]
    return []


def test_toc_lists_every_page_and_only_pages_that_exist():
    listed = [TOC["root"]] + _toc_files(TOC.get("parts", []))
    assert len(listed) == len(set(listed)), "a page is listed twice in _toc.yml"
    on_disk = {f"book/{p.stem}" for p in NOTEBOOKS + PAGES}
    assert set(listed) == on_disk, (
        f"in _toc.yml but missing from book/: {sorted(set(listed) - on_disk)}; "
        f"in book/ but missing from _toc.yml: {sorted(on_disk - set(listed))}"
    )
    assert TOC["root"] == "book/intro"


# --- notebook conventions --------------------------------------------------------------------


def _stored_output_problems(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has execution_count {cell.execution_count}")
    return problems


def _git_blob(path: Path, revision: str) -> str | None:
    """The notebook's text at ``revision`` ("" = the index), or None if git does not have it."""
    if shutil.which("git") is None:
        return None
    relative = path.relative_to(ROOT).as_posix()
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:{relative}"], capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else None


@by_notebook
def test_notebook_is_stored_without_outputs(path):
    """Outputs belong to the build, not to git: strip them with `nbstripout book/*.ipynb`."""
    versions = {"working tree": path.read_text()}
    for name, revision in [("staged (git index)", ""), ("committed (HEAD)", "HEAD")]:
        blob = _git_blob(path, revision)
        if blob is not None:
            versions[name] = blob
    for name, text in versions.items():
        problems = _stored_output_problems(nbformat.reads(text, as_version=4))
        assert not problems, f"{path.name}, {name}: {problems}; run `nbstripout {path.relative_to(ROOT)}`"


@by_notebook
def test_first_code_cell_is_the_standard_setup(path):
    first = code_cells(read(path))[0]
    assert "hide-cell" in tags(first), "tag the setup cell `hide-cell`"
    assert 'if "google.colab" in sys.modules:' in first.source
    assert f"resnext-lessons[data] @ git+{REPO_URL}" in string_constants(first.source), (
        f"the install must use _config.yml's repository.url, {REPO_URL}"
    )
    assert "DEVICE = pick_device()" in first.source


@by_notebook
def test_every_install_url_matches_the_config(path):
    strings = [s for cell in code_cells(read(path)) for s in string_constants(cell.source)]
    urls = set(re.findall(r"git\+(https://[^\s\"'@]+)", "\n".join(strings)))
    assert urls == {REPO_URL}


@by_notebook
def test_sizes_are_chosen_in_one_cell_at_the_top(path):
    uses = [i for i, cell in enumerate(code_cells(read(path))) if "by_device(" in cell.source]
    assert len(uses) <= 1, f"by_device(...) in code cells {uses}: choose every size in one cell"
    assert all(i <= 2 for i in uses), f"the sizes cell is code cell {uses[0]}: move it to the top"


@by_notebook
def test_last_code_cell_is_the_footer(path):
    last = code_cells(read(path))[-1]
    assert last.source.strip() == "footer(DEVICE)"
    assert "remove-input" in tags(last)


@by_notebook
def test_notebook_follows_the_chapter_skeleton(path):
    nb = read(path)
    number = int(path.stem.split("_")[0])
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {number}. ")
    text = markdown(nb)
    for heading in ["## Learning objectives", "## Exercises", "## Summary"]:
        assert re.search(f"^{heading}$", text, re.MULTILINE), f"missing heading {heading!r}"
    assert "{exercise}" in text
    solutions = re.findall(r"```\{solution\}[^\n]*\n((?::[^\n]*\n)*)", text)
    assert solutions, "each exercise has a {solution}"
    assert all(":class: dropdown" in options for options in solutions), "hide solutions (:class: dropdown)"


@pytest.mark.parametrize("stem", EXPLORER_CHAPTERS)
def test_explorer_chapters_render_the_explorer(stem):
    assert EXPLORER_MARKER in "".join(cell.source for cell in code_cells(read(BOOK / f"{stem}.ipynb")))


# --- workflows -------------------------------------------------------------------------------


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _run_steps(workflow: dict) -> str:
    return "\n".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", [])
    )


def test_workflows_are_valid_yaml():
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["ci.yml", "gpu.yml", "pages.yml"]
    for name in names:
        workflow = _workflow(name)
        assert workflow["on"] and workflow["jobs"], name


def test_ci_runs_the_readme_commands():
    ci = _workflow("ci.yml")
    assert {"push", "pull_request", "schedule"} <= set(ci["on"])
    steps = _run_steps(ci)
    assert "pip install -r requirements.txt" in steps
    assert re.search(r"^\s*pytest\b", steps, re.MULTILINE)
    assert "jupyter-book build . --all -W -n --keep-going" in steps
    assert "python _ext/korean.py build --all -W -n --keep-going" in steps


def test_gpu_job_runs_only_where_a_gpu_runner_is_configured():
    gpu = _workflow("gpu.yml")
    for job in gpu["jobs"].values():
        assert "vars.GPU_RUNNER" in job["if"]
        assert "vars.GPU_RUNNER" in job["runs-on"]
        assert str(job["env"]["RESNEXT_REQUIRE_GPU"]) == "1"
    steps = _run_steps(gpu)
    assert "--nbmake" in steps and "python -m resnext_lessons.bench" in steps


def test_pages_deploys_the_built_site():
    pages = _workflow("pages.yml")
    text = (WORKFLOWS / "pages.yml").read_text()
    assert "jupyter-book build ." in _run_steps(pages)
    assert "python _ext/korean.py build" in _run_steps(pages)
    assert "_build/html" in text and "actions/deploy-pages" in text


# --- the built site --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site():
    """Build the book strictly, once, and return (return code, log, html directory)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip(
            "the site test must run after every notebook, which pytest-xdist cannot order: "
            "run `pytest -p no:xdist` or `jupyter-book build . --all -W -n --keep-going`"
        )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", *BUILD_COMMAND]
    built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    return built.returncode, built.stdout + built.stderr, ROOT / "_build" / "html"


def _article(html_dir: Path, stem: str):
    from bs4 import BeautifulSoup

    page = html_dir / "book" / f"{stem}.html"
    assert page.exists(), f"{page} was not built"
    soup = BeautifulSoup(page.read_text(), "html.parser")
    return soup, soup.select_one("article")


@pytest.mark.site
def test_site_builds_without_warnings(site):
    returncode, log, _ = site
    assert returncode == 0, f"`jupyter-book {' '.join(BUILD_COMMAND)}` failed:\n{log[-6000:]}"


@pytest.mark.site
def test_site_reuses_the_notebooks_executed_by_pytest(site, cached_notebooks):
    _, log, _ = site
    executed_again = [p.name for p in cached_notebooks if f"{p}: Executing notebook" in log]
    assert not executed_again, f"the build executed again what nbmake had cached: {executed_again}"
    for path in cached_notebooks:
        assert f"{path}: Using cached notebook" in log


@pytest.mark.site
@by_notebook
def test_chapter_page(site, path):
    *_, html_dir = site
    soup, article = _article(html_dir, path.stem)
    # The learner notebook, from the `notebooks` branch that the pages workflow writes.
    repo = REPO_URL.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{repo}/blob/notebooks/{path.stem}.ipynb"
    assert soup.find("a", href=colab), f"no Colab link to {colab}"
    assert article.find("img"), "each chapter shows at least one figure"
    assert article.select(".pasted-text"), "each chapter glues at least one number into its prose"
    assert "{glue" not in article.get_text(), "an unresolved glue role"
    assert "This page was executed on" in article.get_text(), "the footer is missing"
    if path.stem in EXPLORER_CHAPTERS:
        assert article.select(f"[{EXPLORER_MARKER}]"), "the explorer's embedded state is missing"


@pytest.mark.site
def test_intro_pastes_the_computed_headline(site):
    *_, html_dir = site
    soup, article = _article(html_dir, "intro")
    pasted = [span.get_text() for span in article.select(".pasted-text")]
    # Every pasted value is a computed number (or a list of them), never a placeholder or repr.
    number = r"[+-]?\d{1,3}(,\d{3})*(\.\d+)?"
    numbers = rf"{number}(, {number})*"
    assert len(pasted) >= 4 and all(re.fullmatch(numbers, text) for text in pasted), pasted
    assert not soup.find("a", href=re.compile("colab")), "Colab cannot open intro.md"
    assert (html_dir / "index.html").exists()


@pytest.mark.site
@pytest.mark.parametrize("stem", [p.stem for p in PAGES if p.stem != "intro"])
def test_back_matter_page(site, stem):
    *_, html_dir = site
    _, article = _article(html_dir, stem)
    if stem == "references":
        assert "aggregated residual transformations" in article.get_text().lower()
    if stem == "glossary":
        assert article.select("dl.glossary dt")
