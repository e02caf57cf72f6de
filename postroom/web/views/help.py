"""Help: the user documentation (docs/*.md) served by the running site, so pages can link to it.

The files are Postroom's own, but they are rendered without raw HTML all the same (markdown-it's
CommonMark with tables, `html` off): a page of the site must never run what a file says.
Links between the documents become links between help pages; headings get the anchors that
GitHub gives them, so `configuration.md#files-on-disk` works in both places.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET
from markdown_it import MarkdownIt
from markdown_it.token import Token

_NAME = re.compile(r"[a-z][a-z0-9-]*")
# A link to another document: "users.md", "docs/users.md", "users.md#roles".
_DOC_LINK = re.compile(r"^(?:\./|docs/)?([a-z][a-z0-9-]*)\.md(#[\w-]*)?$")


def docs_dir() -> Path:
    return Path(settings.BASE_DIR) / "docs"


def help_topics() -> list[tuple[str, str]]:
    """(name, title) of every document, by title."""
    topics = [(doc.stem, _title(doc.read_text())) for doc in docs_dir().glob("*.md")]
    return sorted(topics, key=lambda topic: topic[1])


def help_page_html(name: str) -> tuple[str, SafeString]:
    """(title, HTML) of the document `name`; Http404 if there is none."""
    if _NAME.fullmatch(name) is None or not (docs_dir() / f"{name}.md").is_file():
        raise Http404(f"There is no help page {name!r}.")
    source = (docs_dir() / f"{name}.md").read_text()
    return _title(source), _render(source, (docs_dir() / f"{name}.md").stat().st_mtime)


@lru_cache(maxsize=32)
def _render(source: str, mtime: float) -> SafeString:
    # mtime is part of the cache key, so an edited document is rendered afresh.
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = markdown.parse(source)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", _slug(tokens[index + 1].content))
        for child in token.children or ():
            _retarget_link(child)
    return mark_safe(markdown.renderer.render(tokens, markdown.options, {}))  # noqa: S308 - html is off


def _retarget_link(token: Token) -> None:
    if token.type != "link_open":
        return
    href = str(token.attrGet("href") or "")
    match = _DOC_LINK.match(href)
    if match:
        token.attrSet("href", f"/help/{match.group(1)}/{match.group(2) or ''}")


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, blanks become dashes."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _title(source: str) -> str:
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    return first.lstrip("#").strip() or "Help"


@require_GET
def help_index(request: HttpRequest) -> HttpResponse:
    return render(request, "web/help/index.html", {"topics": help_topics()})


@require_GET
def help_page(request: HttpRequest, name: str) -> HttpResponse:
    title, html = help_page_html(name)
    return render(request, "web/help/page.html", {"title": title, "html": html})


urlpatterns = [
    path("", help_index, name="help"),
    path("<str:name>/", help_page, name="help_page"),
]
