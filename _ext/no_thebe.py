"""Keep sphinx-thebe's inline script off the pages: the book does not use thebe.

Jupyter Book 1.x always loads ``sphinx_thebe``. At ``env-before-read-docs`` it calls
``app.add_js_file(None, body="const THEBE_JS_URL = ...; const thebe_selector = ...")``. That
is after ``Builder.init()``, so Sphinx (7.4 and 8.x) hands the script to the builder as
``_JavaScript(None, body=...)``, and ``StandaloneHTMLBuilder.prepare_writing`` adds it again
from the registry as ``_JavaScript('', body=...)``; the two differ only in ``None`` vs ``''``,
so both land in every page. The second ``const`` throws "Identifier 'THEBE_JS_URL' has already
been declared" on every page. This extension disconnects sphinx-thebe's two event handlers, so
neither the script nor the per-page thebe configuration is written. tests/test_browser.py
checks that no page throws.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

THEBE_HANDLERS = ("init_thebe_core", "update_thebe_context")


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension(
        "sphinx_thebe"
    )  # loaded first, so its handlers exist to disconnect
    for event, listeners in app.events.listeners.items():
        for listener in list(listeners):
            handler = listener.handler
            if (
                getattr(handler, "__module__", "") == "sphinx_thebe"
                and handler.__name__ in THEBE_HANDLERS
            ):
                app.disconnect(listener.id)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
