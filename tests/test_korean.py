"""The Korean edition (한국어판): catalogues, the Korean site, and the glue fix it needs.

The catalogues (`locales/ko/LC_MESSAGES/book/*.po`) are checked without building: coverage,
fuzziness, the markup each translation must keep. The `site` tests read the Korean site that
conftest's `korean_site` fixture builds once per session with `python _ext/korean.py build`
(after every notebook ran, so it renders the cached executions) and compare it with the English
build of tests/test_book.py. A tiny book checks the glue fix of `_ext/translation.py` by itself:
with the extension a translated paragraph keeps its glued number; without it, it loses it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import KOREAN_BUILD_COMMAND
from test_learner_notebooks import html_dir  # noqa: F401  (the English site, as a fixture)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import korean  # noqa: E402  (the edition's own tool: _ext/korean.py)

sys.path.remove(str(ROOT / "_ext"))

BOOK = ROOT / "book"
PAGES = sorted(p.stem for p in [*BOOK.glob("*.ipynb"), *BOOK.glob("*.md")])
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.ipynb"))
HANGUL = re.compile(r"[\uac00-\ud7a3]")
by_page = pytest.mark.parametrize("stem", PAGES)


def _read_catalogue(path: Path):
    with path.open("rb") as handle:
        return korean.read_po(handle)


# --- the catalogues ---------------------------------------------------------------------------


def test_every_page_has_a_catalogue():
    have = sorted(p.stem for p in (korean.CATALOGUES / "book").glob("*.po"))
    assert have == PAGES, (
        "run `python _ext/korean.py extract` after adding or renaming a page"
    )


def test_at_least_99_percent_translated_and_none_fuzzy():
    total, done, problems = korean.catalogue_report()
    assert total > 800, f"only {total} messages: were the catalogues extracted?"
    fuzzy = [p for p in problems if ": fuzzy:" in p]
    assert not fuzzy, "fuzzy (the English changed; check the Korean):\n" + "\n".join(
        fuzzy
    )
    assert done / total >= korean.MIN_TRANSLATED, (
        f"{done} of {total} translated ({done / total:.1%}); untranslated:\n"
        + "\n".join(problems)
    )


def test_every_translation_keeps_its_glue_citations_terms_code_and_math():
    problems = []
    for path in sorted(korean.CATALOGUES.rglob("*.po")):
        for message in _read_catalogue(path):
            if message.id and message.string:
                problems += [
                    f"{path.name}: {problem} in {message.id[:70]!r}"
                    for problem in korean.markup_problems(message.id, message.string)
                ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "translation", "problem"),
    [
        (
            "{glue:text}`n:,.0f` paths",
            "{glue:text}`n` 개의 경로",
            "lost '{glue:text}`n:,.0f`'",
        ),
        ("See {cite:p}`xie2017`.", "참고하세요.", "lost '{cite:p}`xie2017`'"),
        ("the {term}`stem`", "{term}`스템 <stage>`", "lost '{term}`<stem>`'"),
        ("`groups=32`", "`groups=16`", "lost 'code groups=32'"),
        ("$C \\cdot d$", "$C d$", "lost 'math $C \\\\cdot d$'"),
        (
            "[site](https://a.org/)",
            "[사이트](https://b.org/)",
            "lost 'link https://a.org/'",
        ),
    ],
)
def test_the_markup_check_catches_a_changed_role_code_math_or_link(
    source, translation, problem
):
    assert problem in korean.markup_problems(source, translation)


def test_the_markup_check_accepts_a_translated_term_title_and_moved_roles():
    source = "A {term}`grouped convolution` with {glue:text}`groups` groups {cite:p}`xie2017`."
    translation = "{cite:p}`xie2017`의 {glue:text}`groups`개 그룹 {term}`그룹 합성곱 <grouped convolution>`."
    assert korean.markup_problems(source, translation) == []


def test_the_term_list_is_in_the_repository():
    terms = (ROOT / "locales" / "ko" / "terms.md").read_text()
    rows = [
        line
        for line in terms.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert len(rows) > 50
    for english, korean_term in [
        ("cardinality", "카디널리티"),
        ("grouped convolution", "그룹 합성곱"),
        ("bottleneck block", "병목 블록"),
        ("split-transform-merge", "분할-변환-병합"),
    ]:
        assert f"| {english} | {korean_term} |" in terms


@pytest.mark.site
def test_catalogues_hold_exactly_the_messages_of_the_sources(tmp_path):
    """A changed English paragraph must reach the catalogues (`python _ext/korean.py extract`)."""
    pot_dir = tmp_path / "gettext"
    command = [
        sys.executable,
        "_ext/korean.py",
        "extract",
        "-q",
        "--pot-only",
        "--pot-dir",
        str(pot_dir),
    ]
    made = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    problems = []
    for pot in sorted(pot_dir.rglob("*.pot")):
        wanted = {m.id for m in _read_catalogue(pot) if m.id}
        po = korean.CATALOGUES / pot.relative_to(pot_dir).with_suffix(".po")
        have = {m.id for m in _read_catalogue(po) if m.id} if po.exists() else set()
        problems += [
            f"{po.name}: not in the catalogue: {m[:80]!r}"
            for m in sorted(wanted - have)
        ]
        problems += [
            f"{po.name}: no longer in the source: {m[:80]!r}"
            for m in sorted(have - wanted)
        ]
    assert not problems, (
        "run `python _ext/korean.py extract`, then translate:\n" + "\n".join(problems)
    )


# --- the Korean site ----------------------------------------------------------------------------


@pytest.fixture
def ko_html(korean_site) -> Path:
    returncode, log, html = korean_site
    assert returncode == 0, (
        f"`python {' '.join(KOREAN_BUILD_COMMAND)}` failed:\n{log[-6000:]}"
    )
    return html


@pytest.fixture
def en_html(html_dir) -> Path:
    """The English site: the session's build, or one made for these tests if run alone."""
    return html_dir


def _article(html_dir: Path, stem: str):
    from bs4 import BeautifulSoup

    page = html_dir / "book" / f"{stem}.html"
    assert page.exists(), f"{page} was not built"
    return BeautifulSoup(page.read_text(), "html.parser").select_one("article")


@pytest.mark.site
def test_korean_site_builds_strictly(korean_site):
    returncode, log, html = korean_site
    assert returncode == 0, (
        f"`python {' '.join(KOREAN_BUILD_COMMAND)}` failed:\n{log[-6000:]}"
    )
    assert (html / "index.html").exists() and (html / "book" / "intro.html").exists()
    assert 'lang="ko"' in (html / "book" / "intro.html").read_text()


@pytest.mark.site
def test_korean_build_executes_no_notebook(korean_site, cached_notebooks):
    _, log, _ = korean_site
    assert "Executing notebook" not in log, "the Korean build ran a notebook again"
    for path in cached_notebooks:
        assert f"{path}: Using cached notebook" in log


NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Words that give away an English phrase pasted into a Korean sentence (code is left out).
ENGLISH_PROSE = re.compile(
    r"\b(?:the|and|of|is|was|were|not|than|against|with|from|less|more|left|right|only|"
    r"which|when|where|this|that|could|would|times|points|clear|winner|faster|inference)\b"
)


def _glued(article) -> list:
    """The values pasted into the prose ({glue:text}, {glue:md}), not into cell outputs."""
    return [
        span
        for span in article.select(".pasted-text, .pasted-md")
        if not span.find_parent(class_="cell")
    ]


def _numbers(spans: list) -> Counter:
    return Counter(n for span in spans for n in NUMBER.findall(span.get_text(" ")))


def _words(span) -> str:
    """A pasted value's text without its code spans (model names, flags) and file paths."""
    text = " ".join(t for t in span.find_all(string=True) if not t.find_parent("code"))
    return re.sub(r"\S*/\S*", " ", text)


@pytest.mark.site
@pytest.mark.parametrize("stem", [*CHAPTERS, "intro"])
def test_every_glued_number_is_on_the_korean_page(en_html, ko_html, stem):
    english, korean_page = (
        _glued(_article(en_html, stem)),
        _glued(_article(ko_html, stem)),
    )
    assert english, "the English page shows no glued value"
    assert len(english) == len(korean_page), (
        "the two pages paste a different number of values"
    )
    only_en = _numbers(english) - _numbers(korean_page)
    only_ko = _numbers(korean_page) - _numbers(english)
    assert not only_en and not only_ko, (
        f"numbers glued on the English page only: {dict(only_en)}; on the Korean only: {dict(only_ko)}"
    )
    assert "{glue" not in _article(ko_html, stem).get_text()


@pytest.mark.site
@pytest.mark.parametrize("stem", [*CHAPTERS, "intro"])
def test_phrases_the_code_writes_read_in_korean(ko_html, stem):
    """A phrase glued into a Korean sentence is the Korean one (glue_prose's `key__ko`)."""
    english = [
        " ".join(span.get_text(" ").split())
        for span in _glued(_article(ko_html, stem))
        if ENGLISH_PROSE.search(_words(span))
    ]
    assert not english, f"English phrases pasted into the Korean page: {english}"


@pytest.mark.site
@by_page
def test_korean_page_shows_the_same_equations(en_html, ko_html, stem):
    """Display math is copied, not translated: the same equations as on the English page."""

    def equations(html):
        return Counter(
            " ".join(m.get_text().split())
            for m in _article(html, stem).select("div.math")
        )

    english, korean_page = equations(en_html), equations(ko_html)
    assert english == korean_page, (
        f"English only: {dict(english - korean_page)}; Korean only: {dict(korean_page - english)}"
    )


def _references(article) -> Counter:
    """Resolved links by kind: glossary terms, citations, other pages (by target file)."""
    found: Counter = Counter()
    for link in article.select("a.reference.internal"):
        href = link.get("href", "")
        if "glossary.html#term-" in href:
            found[f"term {href.split('#')[1]}"] += 1
        elif "references.html#" in href or link.find_parent(class_="cite"):
            found[f"cite {href.split('#')[-1]}"] += 1
        elif href and not href.startswith("#"):
            found[f"page {href.split('#')[0].rsplit('/', 1)[-1]}"] += 1
    return found


@pytest.mark.site
@by_page
def test_korean_page_resolves_the_same_terms_citations_and_page_links(
    en_html, ko_html, stem
):
    english, korean_page = (
        _references(_article(en_html, stem)),
        _references(_article(ko_html, stem)),
    )
    assert english - korean_page == Counter(), (
        f"resolved in English only: {dict(english - korean_page)}"
    )
    assert korean_page - english == Counter(), (
        f"in Korean only: {dict(korean_page - english)}"
    )
    text = _article(ko_html, stem).get_text()
    assert not re.search(r"\{(term|cite|doc|ref)(:\w+)?\}", text), "an unresolved role"


@pytest.mark.site
@by_page
def test_korean_page_reads_in_korean(ko_html, stem):
    article = _article(ko_html, stem)
    title = article.find("h1")
    assert HANGUL.search(title.get_text()), f"title: {title.get_text()!r}"
    prose = [
        p.get_text(" ", strip=True)
        for p in article.find_all("p")
        # not code outputs, nor bibliography entries (a citation keeps its own language)
        if not p.find_parent(class_=("cell", "citation"))
        and len(p.get_text(strip=True)) > 40
    ]
    english = [
        text for text in prose if not HANGUL.search(text) and not text.startswith("[")
    ]
    assert len(english) <= 0.05 * len(prose), (
        f"paragraphs still in English: {english[:5]}"
    )


@pytest.mark.site
@by_page
def test_each_page_links_to_itself_in_the_other_edition(en_html, ko_html, stem):
    for html, other, lang in ((en_html, ko_html, "ko"), (ko_html, en_html, "en")):
        from bs4 import BeautifulSoup

        page = html / "book" / f"{stem}.html"
        link = BeautifulSoup(page.read_text(), "html.parser").select_one(
            f"a.edition-link[hreflang={lang}]"
        )
        assert link is not None, f"{page}: no link to the {lang} edition"
        target = (page.parent / link["href"]).resolve()
        assert target == (other / "book" / f"{stem}.html").resolve(), (
            f"{page} links to {target}"
        )


# --- the glue fix, on a tiny book ----------------------------------------------------------------

_TINY_CONFIG = """\
title: tiny
only_build_toc_files: true
execute:
  execute_notebooks: "off"
sphinx:
  local_extensions:
{extensions}
  config:
    language: ko
    locale_dirs: [locales]
    gettext_compact: false
"""


def _glue_output(key: str, value: str) -> dict:
    """What myst_nb.glue(key, value, display=False) leaves in a cell's outputs."""
    return {
        "output_type": "display_data",
        "data": {"text/plain": value},
        "metadata": {"scrapbook": {"name": key, "mime_prefix": ""}},
    }


def _tiny_book(tmp_path: Path, with_extension: bool) -> tuple[int, str, str]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny"),
        nbformat.v4.new_code_cell("glue('paths', 32)"),
        nbformat.v4.new_markdown_cell("The block has {glue:text}`paths` paths."),
    ]
    nb.cells[1].outputs = [nbformat.from_dict(_glue_output("paths", "32"))]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "ch.ipynb")
    extensions = f"    translation: {ROOT / '_ext'}" if with_extension else "    {}"
    config = _TINY_CONFIG.format(extensions=extensions)
    if not with_extension:
        config = config.replace("  local_extensions:\n    {}\n", "")
    (tmp_path / "_config.yml").write_text(config)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: ch\n")
    po = tmp_path / "locales" / "ko" / "LC_MESSAGES" / "ch.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        + f"msgid {json.dumps('The block has {glue:text}`paths` paths.')}\n"
        + f"msgstr {json.dumps('블록에는 경로가 {glue:text}`paths`개 있습니다.', ensure_ascii=False)}\n",
        encoding="utf-8",
    )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    built = subprocess.run(
        [str(jupyter_book), "build", str(tmp_path), "--all"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    page = tmp_path / "_build" / "html" / "ch.html"
    return (
        built.returncode,
        built.stdout + built.stderr,
        page.read_text() if page.exists() else "",
    )


def test_translated_paragraph_keeps_its_glued_number(tmp_path):
    returncode, log, html = _tiny_book(tmp_path, with_extension=True)
    assert returncode == 0, log[-3000:]
    assert "No key" not in log, log[-3000:]
    assert re.search(
        r'블록에는 경로가 <span class="pasted-text">32</span>개 있습니다', html
    )


def test_without_the_extension_the_translation_loses_the_number(tmp_path):
    """The control: stock myst-nb cannot glue into a translated paragraph (MyST-NB #587)."""
    returncode, log, html = _tiny_book(tmp_path, with_extension=False)
    assert "No key 'paths' found in glue data" in log
    assert (
        "블록에는 경로가" in html and '<span class="pasted-text">32</span>' not in html
    )


def test_the_markup_check_catches_a_title_that_markdown_would_read_as_a_list():
    """Sphinx parses each translation again: "1. 제목" would become a list and be dropped."""
    assert any(
        p.startswith("starts with '1.'")
        for p in korean.markup_problems("1. Title", "1. 제목")
    )
    assert korean.markup_problems("1. Title", "1\\. 제목") == []


def test_the_markup_check_wants_a_copied_equation_identical():
    """A copy that differs only in white space breaks a display equation (it shows "::")."""
    problems = korean.markup_problems("\ny = x + F(x).\n", "y = x + F(x).")
    assert any("identical" in p for p in problems)
    assert korean.markup_problems("\ny = x\n", "\ny = x\n") == []
