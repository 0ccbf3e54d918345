"""Learner notebooks: a plain Colab/Jupyter notebook for every chapter, built with the site.

The book's sources (``book/*.ipynb``) are MyST: glued numbers, citations, glossary terms,
cross-references, exercises and admonitions that only the site build understands. After an
HTML build this extension reads each chapter's *resolved* doctree (myst-nb has pasted the
glued values from the cached execution, sphinxcontrib-bibtex has formatted the citations,
Sphinx has resolved every reference), writes its markdown as CommonMark plus ``$...$`` math,
and writes ``<outdir>/notebooks/<name>.ipynb``:

- an opening cell: the chapter's title, a link to its page on the site, and where its
  numbers were computed;
- the source's code cells, in order, unchanged, without outputs; cells hidden on the site
  (``HIDDEN_TAGS``) gain a first line ``# @title ...`` and ``"cellView": "form"`` so that
  Colab shows them collapsed;
- every markdown cell, converted: links point at the published site
  (``site_url``), admonitions become blockquotes with a bold title, an exercise becomes a
  block headed "Exercise N: title" and its solution a ``<details>`` block.

Nothing is executed. A construct the converter does not know, a glue key missing from the
build, or MyST syntax left in the output fails the build with the chapter, the cell and the
construct named, and that chapter's notebook is not written.

Each chapter page's Colab button is pointed at
``https://colab.research.google.com/github/<org>/<repo>/blob/notebooks/<name>.ipynb``: the
``notebooks`` branch that ``.github/workflows/pages.yml`` writes from ``_build/html/notebooks``.
The repository comes from ``repository.url`` in ``_config.yml`` and nowhere else.
"""

from __future__ import annotations

import bisect
import json
import re
import time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import SphinxError
from sphinx.locale import admonitionlabels
from sphinx.util import logging
from translation import edition_prefix, language_of  # the editions (English, Korean)

LOGGER = logging.getLogger(__name__)

OUTPUT_DIR = "notebooks"  # under the HTML output directory
BRANCH = "notebooks"  # the branch .github/workflows/pages.yml publishes them to
COLAB = "https://colab.research.google.com"
# Cells whose code the site does not show: Colab collapses them into a titled form.
HIDDEN_TAGS = ("hide-cell", "hide-input", "remove-input", "remove-cell")
# The notebook's own words, per edition (the site's language, ``language`` in Sphinx's config).
# Exercise and admonition labels come from sphinx-exercise's and Sphinx's own translations.
WORDS = {
    "en": {
        "hidden": "Hidden on the site: run it as it is, or double-click to read it",
        "solution": "Solution",
        "page": "This is the runnable notebook of [this {kind} on the site]({url}).",
        "kind": {"page": "page", "chapter": "chapter"},
        "numbers": "The numbers in the text were computed when the site was built{where} "
        "and are recomputed when you run the cells.",
        "where": ", on {device},",
        "titles": {},
        "cores": r"(\1 logical cores)",
    },
    "ko": {
        "hidden": "사이트에서는 숨겨 둔 셀입니다. 그대로 실행하거나 두 번 클릭해 코드를 보세요",
        # Hidden cells are titled by their code's first comment, which is English: the common
        # ones in Korean, the rest with the generic title above.
        "titles": {
            "Check the solution.": "해답 확인",
            "Setup: in Colab, install this book's package; everywhere, import and pick the "
            "device.": "준비: Colab에서는 이 책의 패키지를 설치하고, 어디서든 모듈을 불러와 "
            "장치를 고릅니다",
            "Setup: in Colab, install this book's package.": "준비: Colab에서는 이 책의 "
            "패키지를 설치합니다",
        },
        "solution": "해답",
        "page": "[사이트에 있는 이 {kind}]({url})의 실행용 노트북입니다.",
        "kind": {"page": "페이지", "chapter": "장"},
        "numbers": "본문의 수치는 사이트를 빌드할 때{where} 계산한 값이며, 셀을 실행하면 "
        "다시 계산됩니다. 코드의 출력과 그림 속 글자는 한국어판에서도 영어로 표시됩니다.",
        "where": " {device}에서",
        "cores": r"(논리 코어 \1개)",
    },
}

# MyST that must never reach a learner notebook (checked on every markdown cell written).
LEFTOVER_MYST = re.compile(
    r"\{[a-z][\w:+-]*\}`"  # a role: {glue:text}`key`, {cite:p}`key`, {term}`x`
    r"|^\s*(?:`{3,}|~{3,}|:{3,})\s*\{"  # a directive fence: ```{note}, :::{tip}
    r"|^\s*:{3,}"  # a colon fence
    r"|^\s*\([^)\s]+\)=\s*$",  # a target: (label)=
    re.MULTILINE,
)
# The MyST the converter knows (the chapters' house style); anything else fails the build.
KNOWN_ROLES = {"glue:text", "glue:md", "cite:p", "cite:t", "term", "doc", "ref"}
KNOWN_DIRECTIVES = {
    "exercise",
    "solution",
    "note",
    "tip",
    "warning",
    "important",
    "admonition",
}
# A role with its content, or a code span: whichever starts first (code is not MyST).
ROLE_OR_CODE = re.compile(r"\{([^{}\s`]+)\}(`+).*?\2|(`+).*?\3", re.DOTALL)
DIRECTIVE = re.compile(
    r"^[ \t>]*(?:`{3,}|~{3,}|:{3,})[ \t]*(\{[^\n]*?\})", re.MULTILINE
)
SUBSTITUTION = re.compile(r"\{\{[^{}]*\}\}")
PLAIN_FENCE = re.compile(
    r"^[ \t>]*(`{3,}|~{3,})(?![ \t]*\{).*?^[ \t>]*\1[ \t]*$", re.MULTILINE | re.DOTALL
)
GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")
FOOTER = re.compile(r"This page was executed on (.+?) with PyTorch")

# Admonitions the converter knows; their titles are Sphinx's labels in the edition's language.
ADMONITIONS = {
    "attention",
    "caution",
    "danger",
    "error",
    "hint",
    "important",
    "note",
    "tip",
    "warning",
    "seealso",
}


class LearnerNotebookError(SphinxError):
    category = "Learner notebook error"


class Unsupported(Exception):
    """A construct the converter does not know (or must not pass through)."""


# --- where things live -------------------------------------------------------------------


def repository(config: Any) -> tuple[str, str, str]:
    """(org, repo, branch) from ``repository.url`` in _config.yml (the theme's options)."""
    options = config.html_theme_options or {}
    url = str(options.get("repository_url", "")).rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    if not match:
        raise LearnerNotebookError(
            f"repository.url in _config.yml is {url!r}: the learner notebooks and their "
            "Colab buttons need a GitHub URL, https://github.com/<org>/<repo>"
        )
    return match[1], match[2], str(options.get("repository_branch") or "main")


def site_url(config: Any) -> str:
    """This edition's published site: ``html.baseurl`` (else the repository's GitHub Pages),
    plus ``ko/`` for the Korean edition."""
    if config.html_baseurl:
        root = config.html_baseurl.rstrip("/") + "/"
    else:
        org, repo, _ = repository(config)
        root = f"https://{org.lower()}.github.io/{repo}/"
    return root + edition_prefix(config)


def notebook_name(docname: str) -> str:
    return PurePosixPath(docname).name + ".ipynb"


def colab_url(config: Any, docname: str) -> str:
    org, repo, _ = repository(config)
    path = edition_prefix(config) + notebook_name(docname)
    return f"{COLAB}/github/{org}/{repo}/blob/{BRANCH}/{path}"


def learner_docs(app: Sphinx) -> list[str]:
    """The chapters (every notebook page) and the root page, in table-of-contents order."""
    env = app.env
    found = [d for d in env.found_docs if not d.startswith("_")]
    chapters = sorted(d for d in found if env.doc2path(d, False).endswith(".ipynb"))
    docs = [app.config.root_doc, *chapters]
    names = [notebook_name(d) for d in docs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LearnerNotebookError(
            f"two pages would write the same notebook: {duplicates}"
        )
    return docs


# --- inline and block markdown -----------------------------------------------------------

_ESCAPE = re.compile(r"([\\`*_\[\]<>$|])")


def escape(text: str) -> str:
    """Plain text as CommonMark: no emphasis, links, HTML or math by accident."""
    return _ESCAPE.sub(r"\\\1", text.replace("\n", " "))


def code_span(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def indent(text: str, prefix: str, first: str | None = None) -> str:
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        lead = first if (i == 0 and first is not None) else prefix
        out.append((lead + line) if line.strip() else lead.rstrip())
    return "\n".join(out)


class MarkdownWriter:
    """Turns one resolved doctree's nodes into CommonMark (plus pipe tables and math)."""

    def __init__(self, app: Sphinx, docname: str) -> None:
        self.app = app
        self.docname = docname
        self.page = urljoin(site_url(app.config), app.builder.get_target_uri(docname))

    # links ------------------------------------------------------------------------------
    def url(self, node: nodes.Element) -> str:
        if node.get("refuri"):
            uri = node["refuri"]
            if re.match(r"[a-z][a-z0-9+.-]*:", uri):  # http:, https:, mailto:
                return uri
            return urljoin(self.page, uri)
        if node.get("refid"):
            return f"{self.page}#{node['refid']}"
        raise Unsupported(f"a link without a target: {node.astext()!r}")

    # inline -----------------------------------------------------------------------------
    def inline(self, node: nodes.Node) -> str:
        return "".join(self.inline_node(child) for child in node.children)

    def inline_node(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.Text):
            return escape(node.astext())
        if isinstance(node, (nodes.system_message, nodes.problematic)):
            raise Unsupported(f"a build error: {node.astext()[:200]!r}")
        if isinstance(node, addnodes.pending_xref):
            raise Unsupported(f"an unresolved reference: {node.astext()!r}")
        if isinstance(node, nodes.raw):
            raise Unsupported(f"raw {node.get('format', '')} {node.astext()[:80]!r}")
        if isinstance(node, (nodes.target, nodes.comment)) and not node.children:
            return ""
        if isinstance(node, nodes.math):
            return f"${node.astext().strip()}$"
        if isinstance(node, (nodes.literal, addnodes.literal_emphasis)):
            if isinstance(node, nodes.literal) or node.get("classes"):
                return code_span(node.astext())
        if isinstance(node, (nodes.emphasis, nodes.title_reference)):
            body = self.inline(node)
            return f"*{body}*" if body.strip() else body
        if isinstance(node, (nodes.strong, addnodes.literal_strong)):
            body = self.inline(node)
            return f"**{body}**" if body.strip() else body
        if isinstance(node, nodes.reference):
            text = self.inline_without_links(node)
            return f"[{text}]({self.url(node)})"
        if isinstance(node, (nodes.inline, nodes.abbreviation, nodes.container)):
            return self.inline(node)  # pasted glue values, citations, xref spans
        if isinstance(node, nodes.literal_block):
            raise Unsupported("a code block inside a paragraph")
        raise Unsupported(f"the inline node {node.tagname!r}: {node.astext()[:80]!r}")

    def inline_without_links(self, node: nodes.Element) -> str:
        parts = []
        for child in node.children:
            if isinstance(child, nodes.reference):
                parts.append(self.inline_without_links(child))
            else:
                parts.append(self.inline_node(child))
        return "".join(parts)

    # blocks -----------------------------------------------------------------------------
    def blocks(self, parent: nodes.Element, depth: int) -> str:
        parts = [self.block(child, depth) for child in parent.children]
        return "\n\n".join(p for p in parts if p.strip())

    def block(self, node: nodes.Node, depth: int) -> str:  # noqa: C901 - a dispatch table
        from sphinx_exercise.nodes import (
            exercise_enumerable_node,
            exercise_node,
            solution_node,
        )

        if isinstance(node, (nodes.system_message, nodes.problematic)):
            raise Unsupported(f"a build error: {node.astext()[:200]!r}")
        if isinstance(
            node,
            (
                nodes.target,
                nodes.comment,
                nodes.substitution_definition,
                addnodes.index,
            ),
        ):
            return ""
        if isinstance(node, nodes.section) and not isinstance(
            node.children[0] if node.children else None, nodes.title
        ):  # sphinx-exercise wraps a body in an untitled section
            return self.blocks(node, depth)
        if isinstance(node, nodes.section):
            title = node.next_node(nodes.title)
            body = [f"{'#' * min(depth, 6)} {self.inline(title)}"]
            for child in node.children:
                if child is not title:
                    body.append(self.block(child, depth + 1))
            return "\n\n".join(b for b in body if b.strip())
        if isinstance(node, nodes.paragraph):
            return self.inline(node)
        if isinstance(node, nodes.rubric):
            return f"**{self.inline(node)}**"
        if isinstance(node, nodes.bullet_list):
            return "\n".join(
                indent(self.blocks(item, depth), "  ", "- ") for item in node.children
            )
        if isinstance(node, nodes.enumerated_list):
            start = int(node.get("start", 1))
            items = []
            for number, item in enumerate(node.children, start):
                marker = f"{number}. "
                items.append(
                    indent(self.blocks(item, depth), " " * len(marker), marker)
                )
            return "\n".join(items)
        if isinstance(node, nodes.definition_list):
            items = []
            for item in node.children:
                term = self.inline(item.next_node(nodes.term))
                definition = self.blocks(item.next_node(nodes.definition), depth)
                items.append(indent(f"**{term}**: {definition}", "  ", "- "))
            return "\n".join(items)
        if isinstance(node, nodes.math_block):
            return f"$$\n{node.astext().strip()}\n$$"
        if isinstance(node, nodes.literal_block):
            if node.get("nb_element") or "cell" in node.get("classes", []):
                raise Unsupported("a notebook cell inside markdown")
            language = node.get("language", "")
            language = "" if language in ("default", "none") else language
            text = node.astext().rstrip("\n")
            fence = "`" * max(
                3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0)
            )
            return f"{fence}{language}\n{text}\n{fence}"
        if isinstance(node, nodes.block_quote):
            return indent(self.blocks(node, depth), "> ")
        if isinstance(node, nodes.transition):
            return "---"
        if isinstance(node, nodes.table):
            return self.table(node)
        if isinstance(node, (exercise_enumerable_node, exercise_node)):
            return self.exercise(node, depth)
        if isinstance(node, solution_node):
            body = self.blocks_after_title(node, depth)
            summary = WORDS[language_of(self.app.config)]["solution"]
            return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"
        if isinstance(node, nodes.Admonition):
            return self.admonition(node, depth)
        if isinstance(node, nodes.container) and node.get("nb_element"):
            raise Unsupported(f"a notebook {node['nb_element']} inside markdown")
        if isinstance(node, nodes.container) and not node.get("classes"):
            return self.blocks(node, depth)
        if isinstance(node, nodes.compound) and "toctree-wrapper" in node["classes"]:
            return ""  # the navigation, which the sidebar already shows on the site
        if isinstance(node, nodes.raw) and node.line is None and node.source is None:
            return (
                ""  # a script an extension added (sphinx-thebe's), not the page's text
            )
        if isinstance(node, (nodes.image, nodes.figure)):
            raise Unsupported("an image in markdown (show figures from a code cell)")
        raise Unsupported(f"the block {node.tagname!r}: {node.astext()[:80]!r}")

    def blocks_after_title(self, node: nodes.Element, depth: int) -> str:
        parts = [
            self.block(child, depth)
            for child in node.children
            if not isinstance(child, nodes.title)
        ]
        return "\n\n".join(p for p in parts if p.strip())

    def admonition(self, node: nodes.Element, depth: int) -> str:
        title_node = node.next_node(nodes.title)
        if isinstance(node, nodes.admonition):
            if title_node is None or title_node.parent is not node:
                raise Unsupported("an admonition without a title")
            title = self.inline(title_node)
        else:
            if node.tagname not in ADMONITIONS:
                raise Unsupported(f"the admonition {node.tagname!r}")
            # Sphinx's own label, in the edition's language ("Note", "참고").
            title = str(admonitionlabels[node.tagname])
        body = self.blocks_after_title(node, depth)
        return indent(f"**{title}**\n\n{body}", "> ")

    def exercise(self, node: nodes.Element, depth: int) -> str:
        from sphinx_exercise.nodes import exercise_enumerable_node, translate
        from sphinx_exercise.utils import get_node_number

        label = str(
            translate("Exercise")
        )  # sphinx-exercise's, in the edition's language
        heading = label
        if isinstance(node, exercise_enumerable_node):
            number = get_node_number(self.app, node, "exercise")
            if not number:
                raise Unsupported(f"exercise {node.get('label')!r} has no number")
            heading += f" {number}"
        title = node.children[0] if node.children else None
        subtitle = ""
        if isinstance(title, nodes.title):
            # sphinx-exercise renders the title as "<Exercise N> (<subtitle>)"
            text = self.inline(title).strip()
            numbered = rf"{re.escape(label)}(?: [\d.]+)?"
            match = re.fullmatch(rf"(?:{numbered})?\s*\((.*)\)", text, re.S)
            subtitle = match[1].strip() if match else text
            subtitle = "" if re.fullmatch(numbered, subtitle) else subtitle
        if subtitle:
            heading += f": {subtitle}"
        body = self.blocks_after_title(node, depth)
        return indent(f"**{heading}**\n\n{body}", "> ")

    def table(self, node: nodes.table) -> str:
        group = node.next_node(nodes.tgroup)
        rows: list[list[str]] = []
        header_rows = 0
        for part in group.children:
            if isinstance(part, (nodes.thead, nodes.tbody)):
                for row in part.children:
                    cells = []
                    for entry in row.children:
                        if entry.get("morecols") or entry.get("morerows"):
                            raise Unsupported("a table cell that spans rows or columns")
                        text = " ".join(self.block(c, 0) for c in entry.children)
                        cells.append(text.replace("\n", " ").strip())
                    rows.append(cells)
                    header_rows += isinstance(part, nodes.thead)
        if header_rows != 1:
            raise Unsupported("a table without exactly one header row")
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        lines = [f"| {' | '.join(rows[0])} |", "|" + "---|" * width]
        lines += [f"| {' | '.join(r)} |" for r in rows[1:]]
        caption = node.next_node(nodes.title)
        if caption is not None and caption.parent is node:
            lines.insert(0, f"**{self.inline(caption)}**\n")
        return "\n".join(lines)


# --- one document ------------------------------------------------------------------------


def _line(node: nodes.Node) -> int | None:
    for candidate in node.findall(include_self=True):
        if getattr(candidate, "line", None):
            return candidate.line
    return None


def read_source(path: Path) -> nbformat.NotebookNode | None:
    """The notebook myst-nb reads from ``path`` (.ipynb or a MyST Markdown notebook), or None.

    A MyST Markdown notebook's metadata holds ``source_map``: each cell's first line.
    """
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text(encoding="utf8")
    if path.suffix != ".md" or not is_myst_markdown_notebook(text):
        return None
    return read_myst_markdown_notebook(text, add_source_map=True, path=str(path))


def _cell_of(node: nodes.Node, fallback: int, source_map: list[int] | None) -> int:
    """The source cell a block came from.

    myst-nb numbers an .ipynb's lines (cell index + 1) * 10000 + line in the cell; a MyST
    Markdown notebook keeps its file's lines, and ``source_map`` says where each cell starts.
    """
    if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code":
        return int(node["cell_index"])
    line = _line(node)
    if not line:
        return fallback
    if source_map is not None:
        return max(bisect.bisect_right(source_map, line - 1) - 1, 0)
    return line // 10000 - 1 if line >= 10000 else fallback


def _chunks(
    writer: MarkdownWriter, node: nodes.Element, depth: int, out: list, state: dict
) -> None:
    """Flatten the doctree into (cell index, kind, markdown) chunks, in document order."""
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            cell = state["cell"] = _cell_of(title, state["cell"], state["map"])
            out.append((cell, "heading", depth, writer.inline(title)))
            rest = nodes.Element()
            rest.children = [c for c in child.children if c is not title]
            _chunks(writer, rest, depth + 1, out, state)
            continue
        cell = state["cell"] = _cell_of(child, state["cell"], state["map"])
        if (
            isinstance(child, nodes.container)
            and child.get("nb_element") == "cell_code"
        ):
            out.append((cell, "code", depth, ""))
            continue
        try:
            text = writer.block(child, depth)
        except Unsupported as error:
            raise Unsupported(f"cell {cell}: {error}") from None
        if text.strip():
            out.append((cell, "markdown", depth, text))


def _hidden(cell: nbformat.NotebookNode, words: dict) -> nbformat.NotebookNode:
    tags = cell.metadata.get("tags", [])
    cell = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
    if any(tag in tags for tag in HIDDEN_TAGS):
        first = cell.source.split("\n", 1)[0].strip()
        comment = first.lstrip("#").strip() if first.startswith("#") else ""
        if words is WORDS["en"]:
            title = comment or words["hidden"]
        else:  # the code's comments are English: a known title in translation, else the generic
            title = words["titles"].get(comment, words["hidden"])
        cell.source = f"# @title {title}\n{cell.source}"
        cell.metadata["cellView"] = "form"
    return cell


def _check_myst(docname: str, cell: int, source: str) -> list[str]:
    """Roles, directives and substitutions in a markdown cell that the converter does not know.

    myst drops an unknown directive from the doctree (with only a warning), so the source
    itself is checked. Code (fenced blocks, code spans) is left out.
    """
    text = PLAIN_FENCE.sub("", source)
    directives = [found[1:-1] for found in DIRECTIVE.findall(text)]
    roles = [m[1] for m in ROLE_OR_CODE.finditer(text) if m[1]]
    text = ROLE_OR_CODE.sub("", text)
    problems = [
        f"{docname}, cell {cell}: the role {{{name}}} (the converter knows "
        f"{', '.join(sorted(KNOWN_ROLES))})"
        for name in roles
        if name not in KNOWN_ROLES
    ]
    problems += [
        f"{docname}, cell {cell}: the directive {{{name.strip()}}} (the converter knows "
        f"{', '.join(sorted(KNOWN_DIRECTIVES))})"
        for name in directives
        if name.strip() not in KNOWN_DIRECTIVES
    ]
    problems += [
        f"{docname}, cell {cell}: the substitution {found}"
        for found in SUBSTITUTION.findall(text)
    ]
    return problems


def _check_glue(app: Sphinx, docname: str, cell: int, source: str) -> list[str]:
    """Glue keys a markdown cell pastes that the build's glue data lacks."""
    problems = []
    folder = Path(app.env.mystnb_config.output_folder)
    for kind, target in GLUE_ROLE.findall(source):
        doc, _, key = target.rpartition("::")
        key = key.split(":", 1)[0].strip()
        if doc:
            path = (Path(app.env.doc2path(docname)).parent / doc).resolve()
            ref = app.env.path2doc(str(path))
        else:
            ref = docname
        glue_file = folder / f"{ref}.glue.json"
        data = json.loads(glue_file.read_text()) if ref and glue_file.exists() else {}
        if key not in data:
            role = f"{{glue{':' + kind if kind else ''}}}`{target}`"
            problems.append(
                f"{docname}, cell {cell}: {role}: no glue key {key!r} in "
                f"{ref or doc}'s executed notebook"
            )
    return problems


def convert(
    app: Sphinx, docname: str, devices: dict[str, str]
) -> nbformat.NotebookNode:
    """The learner notebook of ``docname``; raises LearnerNotebookError on bad input."""
    env = app.env
    source_path = Path(env.doc2path(docname))
    source = read_source(source_path)
    is_notebook = source is not None
    problems: list[str] = []
    if source is not None:
        for index, cell in enumerate(source.cells):
            if cell.cell_type == "markdown":
                problems += _check_myst(docname, index, cell.source)
                problems += _check_glue(app, docname, index, cell.source)
    else:
        problems += _check_myst(docname, 0, source_path.read_text())
        problems += _check_glue(app, docname, 0, source_path.read_text())
    if problems:
        raise LearnerNotebookError("\n".join(problems))

    doctree = env.get_and_resolve_doctree(docname, app.builder)
    writer = MarkdownWriter(app, docname)
    chunks: list = []
    try:
        source_map = source.metadata.get("source_map") if source is not None else None
        _chunks(writer, doctree, 1, chunks, {"cell": 0, "map": source_map})
    except Unsupported as error:
        raise LearnerNotebookError(f"{docname}, {error}") from None

    text = doctree.astext()
    found = FOOTER.search(text)
    if found:
        devices[docname] = found[1].strip()

    # The page title opens the notebook; it is not repeated below.
    title_index = next(i for i, c in enumerate(chunks) if c[1] == "heading")
    title = chunks.pop(title_index)[3]
    device = devices.get(docname) or "; ".join(sorted(set(devices.values())))
    # "AMD EPYC (2 logical cores) (cpu)": the machine's name says enough
    device = re.sub(r"\s*\((cpu|cuda|mps)[^()]*\)$", "", device)
    words = WORDS[language_of(app.config)]
    device = re.sub(r"\((\d+) logical cores\)", words["cores"], device)
    where = words["where"].format(device=device) if device else ""
    kind = words["kind"]["page" if docname == app.config.root_doc else "chapter"]
    opening = (
        f"# {title}\n\n"
        + words["page"].format(kind=kind, url=writer.page)
        + " "
        + words["numbers"].format(where=where)
    )

    cells = [nbformat.v4.new_markdown_cell(opening)]
    markdown: dict[int, list[str]] = {}
    for cell, kind, depth, body in chunks:
        if kind == "heading":
            body = f"{'#' * min(depth, 6)} {body}"
        if kind != "code":
            markdown.setdefault(cell if is_notebook else len(markdown), []).append(body)
    if is_notebook:
        code_seen = {c[0] for c in chunks if c[1] == "code"}
        for index, cell in enumerate(source.cells):
            if cell.cell_type == "code":
                tags = cell.metadata.get("tags", [])
                shown = index in code_seen or "remove-cell" in tags
                removed = ("remove-input" in tags and "remove-output" in tags) or (
                    "remove_cell" in tags
                )
                if not (shown or removed or not cell.source.strip()):
                    problems.append(
                        f"{docname}, cell {index}: a code cell the page lost"
                    )
                cells.append(_hidden(cell, words))
            elif index in markdown:
                cells.append(
                    nbformat.v4.new_markdown_cell("\n\n".join(markdown.pop(index)))
                )
        if markdown:
            problems.append(
                f"{docname}: markdown from cells {sorted(markdown)} not placed"
            )
    else:
        for index in sorted(markdown):
            cells.append(nbformat.v4.new_markdown_cell("\n\n".join(markdown[index])))

    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        for leftover in LEFTOVER_MYST.finditer(cell.source):
            problems.append(
                f"{docname}, learner cell {index}: MyST left in the output: "
                f"{leftover[0].strip()!r}"
            )
    if problems:
        raise LearnerNotebookError("\n".join(problems))

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for key in ("kernelspec", "language_info", "accelerator"):  # the source's, if set
        if source is not None and source_path.suffix != ".ipynb":
            break  # a Markdown notebook's metadata is its front matter
        if source is not None and key in source.metadata:
            nb.metadata[key] = source.metadata[key]
    nb.metadata["colab"] = {"provenance": [], "toc_visible": True}
    nbformat.validate(nb)
    return nb


# --- Sphinx hooks ------------------------------------------------------------------------


def write_learner_notebooks(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    start = time.perf_counter()
    out_dir = Path(app.outdir) / OUTPUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = learner_docs(app)
    devices: dict[str, str] = {}
    errors = []
    # Chapters first: the root page names the devices its pasted numbers came from.
    for docname in [*docs[1:], docs[0]]:
        target = out_dir / notebook_name(docname)
        try:
            nb = convert(app, docname, devices)
        except LearnerNotebookError as error:
            target.unlink(missing_ok=True)  # never leave a stale or half-converted one
            errors.append(str(error))
            continue
        nbformat.write(nb, target)
    wanted = {notebook_name(d) for d in docs}
    for stale in out_dir.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    if errors:
        raise LearnerNotebookError(
            "could not write these learner notebooks:\n" + "\n".join(errors)
        )
    seconds = time.perf_counter() - start
    LOGGER.info(
        f"learner notebooks: {len(docs)} written to {out_dir} in {seconds:.1f} s"
    )


def point_colab_at_learner_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    """Replace sphinx-book-theme's Colab URL (the source notebook) with the learner one."""
    if app.builder.format != "html":
        return
    url = colab_url(app.config, pagename)

    def visit(item: Any) -> None:
        if isinstance(item, dict):
            if item.get("text") == "Colab" and "url" in item:
                item["url"] = url
            for value in item.values():
                visit(value)
        elif isinstance(item, list):
            for value in item:
                visit(value)

    visit(context.get("header_buttons", []))


def register_round_citations() -> None:
    """``bibtex_reference_style: author_year_round``: "(Xie et al., 2017)", "Xie et al. (2017)".

    sphinxcontrib-bibtex's ``author_year`` puts citations in square brackets; the book (and so
    its learner notebooks) cites the usual author-year way, in parentheses.
    """
    import dataclasses

    from sphinxcontrib.bibtex.plugin import register_plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import (
        AuthorYearReferenceStyle,
    )

    def round_brackets() -> Any:
        return dataclasses.field(
            default_factory=lambda: BracketStyle(left="(", right=")")
        )

    @dataclasses.dataclass
    class RoundAuthorYearStyle(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = round_brackets()
        bracket_textual: BracketStyle = round_brackets()
        bracket_author: BracketStyle = round_brackets()
        bracket_label: BracketStyle = round_brackets()
        bracket_year: BracketStyle = round_brackets()

    register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        "author_year_round",
        RoundAuthorYearStyle,
        force=True,
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension(
        "sphinxcontrib.bibtex"
    )  # defines the citation style plugin group
    register_round_citations()
    app.connect("build-finished", write_learner_notebooks)
    # sphinx-book-theme adds its launch buttons at priority 501.
    app.connect("html-page-context", point_colab_at_learner_notebook, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
