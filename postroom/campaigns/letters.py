"""A campaign template's letter, from what the marketer wrote to what the outbox stores (pure).

- `letter_check`: the subject, HTML and text parse in the one merge language
  (postroom.mail.merge) and name only the campaign's merge fields (`CAMPAIGN_FIELDS`).
- `css_inlined`: the <style> rules written into each element's style attribute, as mail
  programs want (Gmail's app and Outlook ignore most <style> blocks), by css-inline, which
  fetches nothing from the network. Merge tags between elements are hidden in comments while
  it works: an HTML parser moves text found inside a <table> out of it ("foster parenting"),
  which would move `{% if %}` away from the rows it decides.
- `letter_build`: the HTML and text the outbox stores: CSS inlined, the text part generated
  from the HTML when none was written, an unsubscribe line when the letter has none, and,
  with tracking on, links rewritten to signed redirects and an open pixel.
- `letter_warnings`: what a mail program will do with it (clip it, show no text, read out
  image file names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import css_inline

from postroom.compose.html import html_to_text
from postroom.compose.templating import letter_compile
from postroom.mail.merge_rules import TemplateError

# What a campaign template's {{ … }} may name (each recipient's values: postroom.campaigns.
# expansion `recipient_values`).
CAMPAIGN_FIELDS: dict[str, tuple[str, ...]] = {
    "contact": ("first_name", "last_name", "name", "email", "company"),
    "company": ("name",),
    "unsubscribe": ("url",),
}
# Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link, often) when the
# HTML is over 102 KB; warn a little before.
CLIP_WARNING_BYTES = 100 * 1024
_MERGE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"<!--postroom-merge-(\d+)-->")
_LINK = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)([\"'])(.*?)\2", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)

UNSUBSCRIBE_HTML = (
    '<p style="font-size:12px;color:#666666;margin-top:24px;">'
    "You receive this email from {{ company.name }}. "
    '<a href="{{ unsubscribe.url }}" style="color:#666666;">Unsubscribe</a></p>'
)
UNSUBSCRIBE_TEXT = (
    "\n\n--\nYou receive this email from {{ company.name }}.\nUnsubscribe: {{ unsubscribe.url }}\n"
)
OPEN_PIXEL = (
    '<img src="{{ tracking.open }}" width="1" height="1" alt="" '
    'style="border:0;width:1px;height:1px;">'
)


def letter_check(*, subject: str, html: str, text: str) -> None:
    """Raise TemplateError (naming the part) for a letter that cannot be a campaign's."""
    letter_compile(
        subject=subject,
        text=text,
        html=html,
        roots=list(CAMPAIGN_FIELDS),
        fields={root: fields for root, fields in CAMPAIGN_FIELDS.items()},
    )


def _is_inside_tag(html: str, position: int) -> bool:
    """Whether `position` is inside an HTML tag (an attribute value), not in text."""
    return html.rfind("<", 0, position) > html.rfind(">", 0, position)


def css_inlined(html: str) -> str:
    """`html` with its CSS inlined; merge tags come out exactly as they went in."""
    hidden: list[str] = []

    def hide(match: re.Match[str]) -> str:
        if _is_inside_tag(html, match.start()):
            return match.group()  # an attribute's text stays where it is
        hidden.append(match.group())
        return f"<!--postroom-merge-{len(hidden) - 1}-->"

    protected = _MERGE_TAG.sub(hide, html)
    try:
        inlined = _INLINER.inline(protected)
    except ValueError as error:  # css-inline's InlineError for CSS it cannot parse
        raise TemplateError(
            f"The HTML's CSS could not be inlined: {error}. Check the <style> blocks.",
            field="html",
        ) from None
    return _PLACEHOLDER.sub(lambda match: hidden[int(match.group(1))], inlined)


def text_from_html(html: str) -> str:
    """The plain-text part of an HTML letter, merge tags kept (they are text to the parser)."""
    return html_to_text(html)


def uses_unsubscribe(source: str) -> bool:
    return "unsubscribe.url" in source or 'unsubscribe["url"]' in source


@dataclass(frozen=True)
class Letter:
    """What goes into the outbox's template: HTML ('' for none), text, tracked links."""

    html: str
    text: str
    tracked_links: tuple[str, ...] = ()


def letter_build(*, html: str, text: str, is_tracking: bool) -> Letter:
    """The letter as it is sent (see the module doc)."""
    html = css_inlined(html) if html.strip() else ""
    text = text if text.strip() else (text_from_html(html) if html else "")
    if html and not uses_unsubscribe(html):
        html = _before_body_end(html, UNSUBSCRIBE_HTML)
    if not uses_unsubscribe(text):
        text = text.rstrip("\n") + UNSUBSCRIBE_TEXT
    links: tuple[str, ...] = ()
    if html and is_tracking:
        html, links = links_tracked(html)
        html = _before_body_end(html, OPEN_PIXEL)
    return Letter(html=html, text=text, tracked_links=links)


def _before_body_end(html: str, addition: str) -> str:
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + addition
    at = ends[-1].start()
    return html[:at] + addition + html[at:]


def links_tracked(html: str) -> tuple[str, tuple[str, ...]]:
    """Every plain http(s) link through the click redirect: `{{ tracking.click }}N/`.

    Links with merge fields differ per recipient and stay as they are, as does the
    unsubscribe link; the redirect only ever goes to a link of this list (never an open
    redirect).
    """
    links: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        start, quote, url = match.group(1), match.group(2), match.group(3)
        plain = url.strip()
        if not plain.lower().startswith(("http://", "https://")) or _MERGE_TAG.search(plain):
            return match.group()
        links.append(plain.replace("&amp;", "&"))
        return f"{start}{quote}{{{{ tracking.click }}}}{len(links) - 1}/{quote}"

    return _LINK.sub(rewrite, html), tuple(links)


class _ImageCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.without_alt: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and not any(name == "alt" for name, _ in attrs):
            self.without_alt.append(dict(attrs).get("src") or "(no src)")


def images_without_alt(html: str) -> list[str]:
    parser = _ImageCheck()
    parser.feed(html)
    parser.close()
    return parser.without_alt


def letter_warnings(*, html: str, text_written: str, rendered_html_bytes: int) -> list[str]:
    """What to fix before sending, in words (none of it stops a campaign)."""
    warnings = []
    if rendered_html_bytes > CLIP_WARNING_BYTES:
        warnings.append(
            f"The HTML is {rendered_html_bytes / 1024:.0f} KB: Gmail clips messages over "
            "102 KB and hides the rest, unsubscribe link included. Shorten it or move images "
            "and long text to a web page."
        )
    if html.strip() and not text_written.strip():
        warnings.append(
            "No plain-text part is written: Postroom generates one from the HTML (see it in "
            "the preview). Some mail programs and spam filters read only that part."
        )
    missing = images_without_alt(html)
    if missing:
        shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        warnings.append(
            f"{len(missing)} image(s) without alt text ({shown}): mail programs that block "
            "images show nothing in their place, and screen readers read the file name. Add "
            'alt="…" saying what the image shows (alt="" for decoration).'
        )
    if not uses_unsubscribe(html + text_written):
        warnings.append(
            "The letter has no {{ unsubscribe.url }} link: Postroom adds an unsubscribe line "
            "at the bottom. Place the link yourself to choose where it goes."
        )
    return warnings
