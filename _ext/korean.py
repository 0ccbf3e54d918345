"""The Korean edition: extract the messages, report coverage, build the site.

    python _ext/korean.py build [-W -n --keep-going]   # the Korean site, into _build/html/ko/
    python _ext/korean.py extract                      # refresh locales/ko from the sources
    python _ext/korean.py coverage                     # translated share; fails below 99 %
    python _ext/korean.py check                        # every translation keeps its markup
    python _ext/korean.py export PAGE WORKFILE         # a page's messages as plain text
    python _ext/korean.py import PAGE WORKFILE         # ... and back into its catalogue

``build`` runs the same Jupyter Book 1 configuration as ``jupyter-book build .`` with
``language: ko``. It reads the notebooks' outputs from the same cache
(``_build/.jupyter_cache``), so no notebook runs again, and keeps its own doctrees and
execution folder under ``_build/ko/`` (Sphinx's gettext, html and Korean builds cannot share
doctrees). The finished site is copied into ``_build/html/ko/``, beside the English site, so
that the pages' language links work in one published folder. Its learner notebooks land in
``_build/html/ko/notebooks/``.

``extract`` runs Sphinx's gettext builder into ``_build/gettext`` and then
``sphinx-intl update``, which adds new messages to ``locales/ko/LC_MESSAGES/book/*.po`` and
marks changed ones fuzzy.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
LOCALES = ROOT / "locales"
LANGUAGE = "ko"
CATALOGUES = LOCALES / LANGUAGE / "LC_MESSAGES"
KOREAN_BUILD = (
    BUILD / LANGUAGE
)  # doctrees, jupyter_execute and html of the Korean build
SITE = (
    BUILD / "html" / LANGUAGE
)  # where the Korean site is published, beside the English one
CACHE = (
    BUILD / ".jupyter_cache"
)  # jupyter-book's default, filled by pytest or the English build
MIN_TRANSLATED = 0.99
TITLE = "밑바닥부터 만드는 ResNeXt"  # the site title of the Korean edition
# The theme's and myst-nb's own words that Sphinx's translations do not cover.
UI_WORDS = {
    "nb_code_prompt_show": "코드 셀 보기",
    "nb_code_prompt_hide": "코드 셀 숨기기",
}


def _build_sphinx(
    builder: str, outdir: Path, doctrees: Path, overrides: dict, args
) -> int:
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(
        ROOT,
        outdir,
        noconfig=True,
        path_config=str(ROOT / "_config.yml"),
        confoverrides={
            "external_toc_path": "_toc.yml",
            "latex_individualpages": False,
            **({"nitpicky": True} if args.nitpick else {}),
            **overrides,
        },
        builder=builder,
        doctreedir=doctrees,
        force_all=args.all,
        warningiserror=args.warningiserror,
        keep_going=args.keep_going,
        quiet=args.quiet,
    )
    if isinstance(result, Exception):
        raise result
    return int(result)


def build(args) -> int:
    if not CATALOGUES.is_dir():
        sys.exit(
            f"No Korean catalogues in {CATALOGUES}: run `python _ext/korean.py extract`."
        )
    html = KOREAN_BUILD / "html"
    status = _build_sphinx(
        "html",
        html,
        KOREAN_BUILD / ".doctrees",
        # The English build's cache: executions are shared, never repeated.
        {
            "language": LANGUAGE,
            "nb_execution_cache_path": str(CACHE),
            "html_title": TITLE,
            **UI_WORDS,
        },
        args,
    )
    if status == 0:
        if SITE.exists():
            shutil.rmtree(SITE)
        shutil.copytree(html, SITE)
        print(f"The Korean site is in {SITE.relative_to(ROOT)}/ (open index.html).")
    return status


def extract(args) -> int:
    pot_dir = Path(args.pot_dir) if args.pot_dir else BUILD / "gettext"
    # Outputs are not messages, but myst-nb reads the notebooks with them: from the same cache.
    status = _build_sphinx(
        "gettext",
        pot_dir,
        pot_dir.parent / f"{pot_dir.name}-doctrees",
        {"nb_execution_cache_path": str(CACHE)},
        args,
    )
    if status or args.pot_only:
        return status
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "sphinx_intl",
            "update",
            "--pot-dir",
            str(pot_dir),
            "--locale-dir",
            str(LOCALES),
            "--language",
            LANGUAGE,
            "--line-width",
            "-1",
        ]
    )


def catalogue_report() -> tuple[int, int, list[str]]:
    """(messages, translated, problems): problems name each untranslated or fuzzy message."""
    total = done = 0
    problems = []
    for path in sorted(CATALOGUES.rglob("*.po")):
        with path.open("rb") as handle:
            catalogue = read_po(handle)
        for message in catalogue:
            if not message.id:
                continue  # the header
            total += 1
            if message.string and not message.fuzzy:
                done += 1
            else:
                state = "fuzzy" if message.fuzzy else "untranslated"
                problems.append(
                    f"{path.relative_to(ROOT)}: {state}: {message.id[:100]!r}"
                )
    return total, done, problems


def coverage(args) -> int:
    total, done, problems = catalogue_report()
    share = done / total if total else 0.0
    print(f"{done} of {total} messages translated ({share:.1%}); {len(problems)} not.")
    for line in problems:
        print("  " + line)
    return (
        0
        if share >= MIN_TRANSLATED and not any(": fuzzy:" in p for p in problems)
        else 1
    )


# --- markup that a translation must keep ------------------------------------------------------
# Roles whose content is data, not words: kept character for character. Other roles ({term},
# {doc}, {ref}) may translate their title, never their target.
DATA_ROLES = ("glue:text", "glue:md", "glue:figure", "cite:p", "cite:t", "cite")
ROLE = re.compile(r"\{([a-z][\w:+-]*)\}(`+)(.*?)\2", re.DOTALL)
CODE = re.compile(r"(?<![`{}\w])(`+)(?!\s)(.+?)(?<!\s)\1(?!`)", re.DOTALL)
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\s](?:[^$]*?[^$\s])?\$", re.DOTALL)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
EXPLICIT_TITLE = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.DOTALL)


def markup(text: str) -> Counter:
    """What a message must keep: data roles, term targets, code, math and link targets."""
    kept: Counter = Counter()
    without_roles = text
    for match in ROLE.finditer(text):
        name, content = match.group(1), match.group(3)
        if name in DATA_ROLES:
            kept[f"{{{name}}}`{content}`"] += 1
        else:
            # {term}, {doc}, {ref}: the words may be translated, the target may not.
            explicit = EXPLICIT_TITLE.match(content)
            target = explicit.group(2) if explicit else content
            if name == "term":
                target = target.lower()
            kept[f"{{{name}}}`<{target}>`"] += 1
        without_roles = without_roles.replace(match.group(0), " ", 1)
    for match in MATH.finditer(without_roles):
        kept[f"math {match.group(0)}"] += 1
    for match in CODE.finditer(MATH.sub(" ", without_roles)):
        kept[f"code {match.group(2)}"] += 1
    for match in LINK_TARGET.finditer(without_roles):
        kept[f"link {match.group(1)}"] += 1
    return kept


# A message is parsed again as Markdown on its own: at its start these would become a list,
# a heading or a quote (a chapter title "1. ..." would turn into a numbered list and be dropped).
BLOCK_START = re.compile(r"^(?:\d+[.)]|[-*+]|#{1,6}|>)(?:\s|$)")


def markup_problems(source: str, translation: str) -> list[str]:
    """How a translation's markup differs from its source's (empty when it keeps all of it)."""
    want, got = markup(source), markup(translation)
    problems = [f"lost {item!r}" for item in sorted((want - got).elements())]
    problems += [f"added {item!r}" for item in sorted((got - want).elements())]
    if translation != source and translation.strip() == source.strip():
        # Sphinx leaves a message alone only if its translation is empty or identical; a copy
        # that differs in white space is "translated" and a display equation comes out as "::".
        problems.append(
            "a copy of the source must be identical to it, white space included"
        )
    start = BLOCK_START.match(translation)
    if start:
        problems.append(
            f"starts with {start[0].strip()!r}, which Markdown reads as a block: "
            f"escape it ({start[0].strip()[:-1]}\\{start[0].strip()[-1]})"
        )
    return problems


def _catalogue_path(page: str) -> Path:
    path = CATALOGUES / "book" / f"{Path(page).stem}.po"
    if not path.exists():
        sys.exit(
            f"No catalogue {path.relative_to(ROOT)}: pages are {', '.join(p.stem for p in sorted((CATALOGUES / 'book').glob('*.po')))}."
        )
    return path


def _read(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def check(args) -> int:
    bad = 0
    for path in sorted(CATALOGUES.rglob("*.po")):
        for message in _read(path):
            if message.id and message.string:
                for problem in markup_problems(message.id, message.string):
                    bad += 1
                    print(f"{path.relative_to(ROOT)}: {problem} in {message.id[:80]!r}")
    print(f"{bad} markup problem(s).")
    return int(bad > 0)


WORK_HEADER = "=== "
WORK_SPLIT = "--- ko"


def export(args) -> int:
    """Write a page's messages as blocks: '=== N', the English, '--- ko', the Korean (if any)."""
    catalogue = _read(_catalogue_path(args.page))
    blocks = []
    for number, message in enumerate(m for m in catalogue if m.id):
        blocks.append(
            f"{WORK_HEADER}{number}\n{message.id}\n{WORK_SPLIT}\n{message.string or ''}\n"
        )
    Path(args.workfile).write_text("\n".join(blocks), encoding="utf-8")
    print(f"{len(blocks)} messages written to {args.workfile}.")
    return 0


def import_(args) -> int:
    """Read a work file back: each block's Korean becomes its message's translation."""
    path = _catalogue_path(args.page)
    catalogue = _read(path)
    messages = [m for m in catalogue if m.id]
    text = Path(args.workfile).read_text(encoding="utf-8")
    blocks = re.split(rf"^{WORK_HEADER}(\d+)\n", text, flags=re.MULTILINE)[1:]
    problems = 0
    for number, body in zip(blocks[::2], blocks[1::2]):
        english, _, korean = body.partition(f"\n{WORK_SPLIT}\n")
        message = messages[int(number)]
        if english.strip() != message.id.strip():
            sys.exit(
                f"Block {number} does not match its message; export again. Nothing was written."
            )
        korean = korean.strip("\n")
        if korean == message.id.strip("\n"):
            # a copy (an equation, a name) must be identical, or Sphinx breaks it
            korean = message.id
        for problem in markup_problems(message.id, korean) if korean else []:
            problems += 1
            print(f"block {number}: {problem}")
        message.string = korean
        message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalogue, width=0)
    done = sum(1 for m in messages if m.string)
    print(
        f"{path.relative_to(ROOT)}: {done} of {len(messages)} translated, {problems} markup problem(s)."
    )
    return int(problems > 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("export", export), ("import", import_)):
        command = sub.add_parser(name)
        command.set_defaults(func=func)
        command.add_argument("page", help="a page's name, e.g. 01_resnet_bottleneck")
        command.add_argument("workfile")
    for name, func in (
        ("build", build),
        ("extract", extract),
        ("coverage", coverage),
        ("check", check),
    ):
        command = sub.add_parser(name)
        command.set_defaults(func=func)
        command.add_argument("-W", dest="warningiserror", action="store_true")
        command.add_argument("-n", dest="nitpick", action="store_true")
        command.add_argument("--keep-going", action="store_true")
        command.add_argument("--all", action="store_true", help="re-read every page")
        command.add_argument("-q", dest="quiet", action="store_true")
        if name == "extract":
            command.add_argument(
                "--pot-dir", help="where the .pot files go (_build/gettext)"
            )
            command.add_argument(
                "--pot-only", action="store_true", help="write the .pot files only"
            )
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
