"""Translations of the book (the Korean edition) through Sphinx's gettext machinery.

Three things the stock stack does not do for this book:

1. **Computed outputs are not messages.** A cell's outputs (tables that code prints as
   Markdown, printed text) come from the one shared execution, and their numbers change from
   run to run. They are marked ``translatable = False`` before Sphinx extracts or translates
   messages, so the catalogues hold only the prose that authors write. Outputs therefore read
   in English on every edition (the Korean introduction says so).

2. **Glued numbers survive translation.** Sphinx re-parses each translated paragraph as a new,
   separate document (``sphinx.transforms.i18n.publish_msgstr``). myst-nb's glue roles
   (``{glue:text}``, ``{glue:md}``) look their value up in ``document["nb_renderer"]``, which
   exists only while the page itself is parsed, so in the re-parse every glued number was lost
   ("No key ... found in glue data for this document", MyST-NB issue #587). This extension's
   parser keeps the page's notebook renderer for the rest of the page's read
   (``env.temp_data``, which Sphinx clears after each page) and lends it to the re-parse of
   that page's translated messages, so each role pastes the same value as on the English page.

   A phrase that the code writes into the prose is glued in each language
   (``resnext_lessons.notebook.glue_prose``: ``key`` and ``key__ko``); the re-parse pastes the
   phrase of the page's language.

   sphinx-exercise's exercise titles become messages too (``TranslatableExercise``).

   The table of contents' part captions are translated too (``TranslateTocCaptions``).

3. **Each page links to itself in the other language.** A small bar at the top of each page,
   relative links only, so the two sites can be published side by side: the English site at
   the root and the Korean one under ``ko/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from myst_nb.ext.glue.roles import PasteMarkdownRole
from myst_nb.sphinx_ import Parser as MystNbParser
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx_exercise.directive import ExerciseDirective
from sphinx_exercise.nodes import exercise_subtitle

RENDERER_KEY = "translation:nb_renderer"
# The editions and where each lives relative to the English site's root.
EDITIONS = {"en": ("English", ""), "ko": ("한국어", "ko/")}


class NotebookParser(MystNbParser):
    """myst-nb's parser, which also lends the page's glue data to its translated messages."""

    def parse(self, inputstring: str, document: nodes.document) -> None:
        env = document.settings.env
        if document.current_source.endswith("<translated>"):
            renderer = env.temp_data.get(RENDERER_KEY)
            if renderer is None:
                return super().parse(inputstring, document)
            document.attributes["nb_renderer"] = renderer
            glued = renderer.renderer.nb_client.glue_data
            inputstring = in_language(inputstring, glued, env.config.language)
            try:
                return super().parse(inputstring, document)
            finally:
                document.attributes.pop("nb_renderer", None)
        # myst-nb removes the renderer from the document when the parse ends; keep a reference.
        document.attributes = _Keeper(document.attributes, env.temp_data)
        try:
            return super().parse(inputstring, document)
        finally:
            document.attributes = dict(document.attributes)


GLUE_ROLE = re.compile(r"(\{glue:(?:md|text)\}`)([^`:]+)((?::[^`]*)?`)")


def in_language(text: str, glued: dict, language: str) -> str:
    """Point each glue role at the value glued for ``language`` (``key__ko``) where there is one.

    The notebooks glue a phrase of the prose twice, in English and in Korean
    (``resnext_lessons.notebook.glue_prose``); translators keep the English key, and the
    translated page pastes the phrase in its own language.
    """

    def swap(match: re.Match) -> str:
        key = f"{match[2]}__{language}"
        return f"{match[1]}{key}{match[3]}" if key in glued else match[0]

    return GLUE_ROLE.sub(swap, text)


class _Keeper(dict):
    """A document's attributes that remember the notebook renderer when it is removed."""

    def __init__(self, attributes: dict, store: dict) -> None:
        super().__init__(attributes)
        self._store = store

    def pop(self, key: Any, *default: Any) -> Any:
        if key == "nb_renderer" and key in self:
            self._store[RENDERER_KEY] = self[key]
        return super().pop(key, *default)


class OutputsAreNotMessages(SphinxTransform):
    """Mark everything inside a cell's outputs untranslatable (before Locale, priority 20)."""

    default_priority = 15

    def apply(self, **kwargs: Any) -> None:
        for container in self.document.findall(nodes.container):
            if "cell_output" not in container.get("classes", []):
                continue
            for node in container.findall(nodes.TextElement):
                node["translatable"] = False


class TranslatableExercise(ExerciseDirective):
    """sphinx-exercise's ``{exercise}``, whose title (the directive's argument) is a message.

    sphinx-exercise builds the title without a source or raw text, and a post-transform later
    rebuilds it from the subtitle's children, so Sphinx's gettext never saw an exercise title.
    Here the subtitle's content is wrapped in one translatable inline node that carries the
    argument as its raw text; it survives the rebuild, and Sphinx translates it like a paragraph.
    """

    def run(self) -> list[nodes.Node]:
        result = super().run()
        if self.arguments:
            source, line = self.get_source_info()
            for node in result:
                for subtitle in node.findall(exercise_subtitle):
                    message = nodes.inline(self.arguments[0], "", translatable=True)
                    message.extend(subtitle.children)
                    message.source, message.line = source, line
                    subtitle.children = []
                    subtitle += message
        return result


def keep_translated_exercises(app: Sphinx, doctree: nodes.document) -> None:
    """Solutions repeat their exercise's title from sphinx-exercise's registry, which copied the
    exercise before the translation; copy it again, translated."""
    registry = getattr(app.env, "sphinx_exercise_registry", {})
    for node in doctree.findall(nodes.Element):
        label = node.get("label") if node.get("type") == "exercise" else None
        if label in registry and registry[label].get("docname") == app.env.docname:
            registry[label]["node"] = node.deepcopy()


class PasteMarkdown(PasteMarkdownRole):
    """myst-nb's ``{glue:md}``, its output wrapped in ``<span class="pasted-md">``.

    ``{glue:text}`` values carry the class ``pasted-text``; ``{glue:md}`` values carried none,
    so nothing could find them on a page (tests/test_korean.py compares the numbers pasted on
    the English and the Korean page).
    """

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        pasted, messages = super().run()
        if not pasted:
            return pasted, messages
        wrapper = nodes.inline("", "", *pasted, classes=["pasted-md"])
        self.set_source_info(wrapper)
        return [wrapper], messages


class TranslateTocCaptions(SphinxTransform):
    """Translate the table of contents' part captions ("Building ResNeXt", ...).

    sphinx-external-toc inserts the root page's toctrees (priority 100) after Sphinx's Locale
    transform (20) has translated the page, so their captions, which the gettext builder does
    extract, stayed English in the sidebar.
    """

    default_priority = 101

    def apply(self, **kwargs: Any) -> None:
        if language_of(self.config) == "en":
            return
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [str(Path(self.env.srcdir) / d) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            if toctree.get("caption"):
                toctree["caption"] = toctree["rawcaption"] = catalog.gettext(
                    toctree["caption"]
                )


def language_of(config: Any) -> str:
    """The edition being built: "en", or a translation's language ("ko")."""
    return config.language if config.language in EDITIONS else "en"


def edition_prefix(config: Any) -> str:
    """Where the edition being built lives below the English site's root: "" or "ko/"."""
    return EDITIONS[language_of(config)][1]


def other_editions(config: Any, pagename: str) -> list[tuple[str, str, str]]:
    """(language, label, relative URL) of this page in every other edition."""
    here = language_of(config)
    up = "../" * (pagename.count("/") + edition_prefix(config).count("/"))
    return [
        (lang, label, f"{up}{prefix}{pagename}.html")
        for lang, (label, prefix) in EDITIONS.items()
        if lang != here
    ]


# The theme's own words whose shipped translation reads wrongly, per language: sphinx-book-theme's
# Korean catalogue renders its footer "By <author>" as "으로 <author>".
THEME_WORDS = {"ko": {"By": "지은이:"}}


def fix_theme_words(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    words = THEME_WORDS.get(language_of(app.config))
    translate = context.get("translate")
    if words and translate is not None:
        context["translate"] = lambda text: words.get(text) or translate(text)


def add_language_links(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    if doctree is None or "body" not in context:
        return
    links = " · ".join(
        f'<a class="edition-link" hreflang="{lang}" href="{url}">{label}</a>'
        for lang, label, url in other_editions(app.config, pagename)
    )
    context["body"] = f'<p class="edition-switch">{links}</p>\n' + context["body"]


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_nb")  # loaded first, so that this parser replaces its own
    app.add_source_parser(NotebookParser, override=True)
    app.add_transform(OutputsAreNotMessages)
    app.add_transform(TranslateTocCaptions)
    app.add_role_to_domain("glue", "md", PasteMarkdown(), override=True)
    app.setup_extension("sphinx_exercise")
    app.add_directive("exercise", TranslatableExercise, override=True)
    app.connect("doctree-read", keep_translated_exercises)
    app.connect("html-page-context", add_language_links)
    app.connect("html-page-context", fix_theme_words, priority=900)  # after the theme's
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
