"""Run each chapter notebook once per `pytest` + `jupyter-book build` cycle.

`pytest` executes every notebook in book/ with nbmake. After a notebook passes, its executed
copy is stored in jupyter-cache at _build/.jupyter_cache, the cache that `jupyter-book build .`
reads in `execute_notebooks: cache` mode, so the build renders those outputs instead of running
the notebook again. The notebook in book/ is never written to: it stays without outputs.

The site tests (marked `site`) build the book and read the HTML, so they run after every
notebook of the session. The browser tests (marked `browser`) open that same build in Chromium,
so they run after the site tests; the `site_build` fixture hands them the session's build.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parent
# jupyter-book's default for `jupyter-book build .` (<build dir>/.jupyter_cache); _config.yml
# leaves `execute.cache` unset so that both sides agree (tests/test_book.py checks).
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"

# The notebooks this session stored in the cache, for the site test to check they were not re-run.
CACHED_NOTEBOOKS = pytest.StashKey[set]()
# What tests/test_book.py's `site` fixture returned: (return code, log, html directory).
SITE_BUILD = pytest.StashKey[tuple]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[CACHED_NOTEBOOKS] = set()


def _stage(item: pytest.Item) -> int:
    if item.get_closest_marker("browser") is not None:
        return 2
    return int(item.get_closest_marker("site") is not None)


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Stable sort: everything keeps its order, site tests move after the notebooks they render,
    # browser tests after the site tests whose build they open.
    items.sort(key=_stage)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    """Remember the book build of tests/test_book.py's `site` fixture for the browser tests."""
    outcome = yield
    if fixturedef.argname == "site" and outcome.excinfo is None:
        request.config.stash[SITE_BUILD] = outcome.get_result()


def _is_notebook_item(item: pytest.Item) -> bool:
    return getattr(item, "nbmake", False) is True


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def store_in_jupyter_cache(
    source_path: Path, executed: nbformat.NotebookNode, seconds: float
) -> None:
    """Store the executed notebook so myst-nb finds it for ``source_path``'s notebook.

    jupyter-cache keys a notebook by its code cells' source and metadata and its kernelspec
    (``JupyterCacheBase.create_hashed_notebook``). nbclient adds timing metadata to every cell
    it runs, so the source's cell metadata and kernelspec are put back before storing.
    Raises ValueError if the source changed since it was executed.
    """
    from filelock import FileLock
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    source = nbformat.read(source_path, as_version=4)
    executed = copy.deepcopy(executed)
    source_cells, executed_cells = _code_cells(source), _code_cells(executed)
    if [c.source for c in source_cells] != [c.source for c in executed_cells]:
        raise ValueError(
            f"{source_path} changed while it was being executed; not caching it"
        )
    for src, out in zip(source_cells, executed_cells):
        out.metadata = copy.deepcopy(src.metadata)
    executed.metadata["kernelspec"] = copy.deepcopy(
        source.metadata.get("kernelspec", {})
    )

    JUPYTER_CACHE.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share one SQLite database: one writer at a time.
    with FileLock(str(JUPYTER_CACHE.parent / ".jupyter_cache.lock")):
        cache = get_cache(str(JUPYTER_CACHE))
        cache.cache_notebook_bundle(
            CacheBundleIn(
                executed,
                str(source_path.resolve()),
                data={"execution_seconds": seconds},
            ),
            check_validity=False,
            overwrite=True,
        )
        cache.match_cache_notebook(source)  # KeyError if myst-nb would not find it


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Around each nbmake item: keep the executed notebook, and cache it if the item passes."""
    if not _is_notebook_item(item):
        yield
        return
    import nbmake.pytest_items

    if not hasattr(nbmake.pytest_items, "NotebookRun"):
        item.warn(
            pytest.PytestWarning(
                "this nbmake version has no NotebookRun: notebooks are not cached"
            )
        )
        yield
        return
    results = []

    class RecordingRun(nbmake.pytest_items.NotebookRun):
        def execute(self):
            result = super().execute()
            results.append(result)
            return result

    start = time.perf_counter()
    # nbmake only hands out the executed notebook through --overwrite, which writes it over the
    # source; recording the run's result instead leaves book/ untouched.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nbmake.pytest_items, "NotebookRun", RecordingRun)
        outcome = yield
    if outcome.excinfo is not None or len(results) != 1 or results[0].error is not None:
        return
    source_path = Path(item.filename)  # nbmake's absolute path of the notebook
    try:
        store_in_jupyter_cache(source_path, results[0].nb, time.perf_counter() - start)
    except (
        Exception
    ) as error:  # a cache miss only costs time: the build executes the notebook
        item.warn(
            pytest.PytestWarning(
                f"could not cache {source_path.name} for the book build: {error!r}"
            )
        )
        return
    item.config.stash[CACHED_NOTEBOOKS].add(source_path.resolve())


@pytest.fixture
def cached_notebooks(request: pytest.FixtureRequest) -> set[Path]:
    """Notebooks that passed under nbmake in this session and are now in the build's cache."""
    return set(request.config.stash[CACHED_NOTEBOOKS])


@pytest.fixture(scope="module")
def site_build(request: pytest.FixtureRequest) -> tuple | None:
    """The site tests' book build in this session, (return code, log, html directory), or None
    if no site test has built it yet (read when a module first asks for it)."""
    return request.config.stash.get(SITE_BUILD, None)


# The Korean edition's strict build (README: "the Korean site"); it renders the same cache.
KOREAN_BUILD_COMMAND = ["_ext/korean.py", "build", "--all", "-W", "-n", "--keep-going"]


@pytest.fixture(scope="session")
def korean_site() -> tuple:
    """Build the Korean site once per session: (return code, log, html directory).

    Only `site` tests ask for it, and they run after every notebook (see the ordering above),
    so it renders the executions that nbmake cached, like the English build.
    """
    import os
    import subprocess
    import sys

    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip(
            "the Korean site must be built after every notebook ran: `pytest -p no:xdist`"
        )
    built = subprocess.run(
        [sys.executable, *KOREAN_BUILD_COMMAND],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return (
        built.returncode,
        built.stdout + built.stderr,
        ROOT / "_build" / "html" / "ko",
    )


@pytest.fixture
def jupyter_cache_dir() -> Path:
    """Where this conftest stores executed notebooks for `jupyter-book build .`."""
    return JUPYTER_CACHE
