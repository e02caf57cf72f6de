"""Rich-text HTML for mail: sanitize it, and write its plain-text alternative (pure).

The compose editor sends HTML written in a browser, which is input like any other: pasted
from a web page, it can carry scripts, event handlers, `javascript:` links, styles that
hide text, tracking images. `html_sanitize` keeps an allow-list of tags and attributes
(nh3, the Rust `ammonia` sanitizer; its parser is html5ever, the one a browser uses, so
what it checks is what a mail client will see) and gives every link rel="noopener
noreferrer".

`html_to_text` writes the text/plain part every HTML mail should have (spam filters and
text-only readers expect one), with the stdlib `html.parser`: paragraphs and headings
separated by a blank line, <br> as a line break, list items as "- " (numbered in an <ol>),
quotes as "> ", links as "text (url)".
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr",
        "i", "li", "ol", "p", "pre", "s", "span", "strong", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
# Links a mail reader can follow; anything else (javascript:, data:, vbscript:) is dropped.
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
LINK_REL = "noopener noreferrer"
# Removed with their content, not just their tags: their text is code, not prose.
CONTENT_REMOVED_TAGS = frozenset({"script", "style", "title", "head", "template", "noscript"})

_BLOCK_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol",
        "table", "address", "article", "aside", "footer", "header", "section", "figure",
        "form", "fieldset", "dl",
    }
)  # fmt: skip
# A <div> is a line: a browser's editor makes one per line typed (without paragraph mode).
_LINE_TAGS = frozenset({"div", "tr", "dt", "dd", "li", "figcaption", "caption"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area"})
_BLANKS = re.compile(r"[ \t\n\r\f\v]+")
# An HTML mail is ≤ the message limit (25 MB); deeper nesting than this is not a letter.
_MAX_LIST_DEPTH = 20


def html_sanitize(html: str) -> str:
    """Keep only the allow-listed tags and attributes; links get rel="noopener noreferrer"."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(CONTENT_REMOVED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def html_is_blank(html: str) -> bool:
    """True when the HTML shows no text (an editor left empty still holds "<br>")."""
    return not html_to_text(html).strip()


def html_document(fragment: str) -> str:
    """Wrap a sanitized fragment as the HTML part's document."""
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n</head>\n<body>\n'
        f"{fragment}\n</body>\n</html>\n"
    )


def text_to_html(text: str) -> str:
    """Plain text as paragraphs of escaped HTML: what the editor starts from."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        f"<p>{escape(paragraph).replace(chr(10), '<br>')}</p>"
        for paragraph in paragraphs
        if paragraph
    )


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.pending_newlines = 0
        # The quote depth where the pending line ends were asked for: the blank line before
        # a quote is not part of it.
        self.break_quote_depth = 0
        self.skip_depth = 0
        self.pre_depth = 0
        self.quote_depth = 0
        self.lists: list[list[int | None]] = []  # per open list: [next number or None]
        self.links: list[tuple[str, list[str]]] = []  # (href, text seen inside)
        self.item_marker: str | None = None

    # -- writing ------------------------------------------------------------------------

    def _prefix(self) -> str:
        return "> " * self.quote_depth + "  " * max(len(self.lists) - 1, 0)

    def _ask_newlines(self, count: int) -> None:
        if not self.pending_newlines:
            self.break_quote_depth = self.quote_depth
        self.break_quote_depth = min(self.break_quote_depth, self.quote_depth)
        self.pending_newlines = count

    def _break(self, count: int) -> None:
        """Ask for `count` line ends before the next text (1: new line, 2: blank line)."""
        if self.lines or self.line:
            self._ask_newlines(max(self.pending_newlines, count))

    def _end_line(self) -> None:
        self.lines.append("".join(self.line).rstrip())
        self.line = []

    def _write(self, text: str) -> None:
        if self.pending_newlines:
            if self.line:
                self._end_line()
            blank = ("> " * min(self.break_quote_depth, self.quote_depth)).rstrip()
            self.lines.extend([blank] * (self.pending_newlines - 1))
            self.pending_newlines = 0
        if not self.line:
            self.line.append(self._prefix())
            if self.item_marker is not None:
                self.line.append(self.item_marker)
                self.item_marker = None
        self.line.append(text)
        for _href, seen in self.links:
            seen.append(text)

    # -- parser callbacks ---------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: C901 - one rule per element and attribute kind, as the sanitiser reads
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            # One more line end than already asked for: two <br> make a blank line.
            self._ask_newlines(self.pending_newlines + 1)
            return
        if tag == "hr":
            self._break(2)
            self._write("----")
            self._break(2)
            return
        if tag == "img":
            alt = dict(attrs).get("alt") or ""
            if alt.strip():
                self._text(alt)
            return
        if tag in {"ul", "ol"}:
            self._break(2 if not self.lists else 1)
            if len(self.lists) < _MAX_LIST_DEPTH:
                self.lists.append([1 if tag == "ol" else None])
            return
        if tag == "li":
            self._break(1)
            number = self.lists[-1][0] if self.lists else None
            if self.lists and number is not None:
                self.lists[-1][0] = number + 1
                self.item_marker = f"{number}. "
            else:
                self.item_marker = "- "
            return
        if tag == "blockquote":
            self._break(2)
            self.quote_depth += 1
            return
        if tag == "pre":
            self._break(2)
            self.pre_depth += 1
            return
        if tag == "a":
            self.links.append((dict(attrs).get("href") or "", []))
            return
        if tag in {"td", "th"} and self.line:
            self._write(" ")
            return
        if tag in _BLOCK_TAGS:
            self._break(2)
        elif tag in _LINE_TAGS:
            self._break(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth = max(self.skip_depth - 1, 0)
            return
        if self.skip_depth:
            return
        if tag in {"ul", "ol"}:
            if self.lists:
                self.lists.pop()
            self._break(2 if not self.lists else 1)
        elif tag == "blockquote":
            self.quote_depth = max(self.quote_depth - 1, 0)
            self._break(2)
        elif tag == "pre":
            self.pre_depth = max(self.pre_depth - 1, 0)
            self._break(2)
        elif tag == "a" and self.links:
            href, seen = self.links.pop()
            self._link_end(href.strip(), "".join(seen).strip())
        elif tag in _BLOCK_TAGS:
            self._break(2)
        elif tag in _LINE_TAGS:
            self._break(1)

    def _link_end(self, href: str, text: str) -> None:
        if not href or href.startswith("#"):
            return
        shown = href.removeprefix("mailto:") if href.startswith("mailto:") else href
        if text in {href, shown}:
            return
        if not text:
            self._write(href)
        else:
            self._write(f" ({shown if href.startswith('mailto:') else href})")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self._text(data)

    def _text(self, data: str) -> None:
        if self.pre_depth:
            lines = data.replace("\r\n", "\n").split("\n")
            for index, piece in enumerate(lines):
                if index:
                    self._ask_newlines(1)
                if piece:
                    self._write(piece)
            return
        text = _BLANKS.sub(" ", data)
        if not self.line or self.pending_newlines or self.item_marker is not None:
            text = text.lstrip()
        if text:
            self._write(text)

    def result(self) -> str:
        if self.line:
            self._end_line()
        text = "\n".join(line.rstrip() for line in self.lines)
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
        return text + "\n" if text else ""


def html_to_text(html: str) -> str:
    """The plain-text alternative of `html` (see the module doc for the layout)."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.result()
