"""A letter's three parts, subject, text and HTML, compiled in the merge language (pure).

The language itself (Jinja's syntax in its sandbox, its allow-list, the fast form bulk mail
uses) is postroom.mail.merge, shared with the bulk renderer so that a user writes one syntax
everywhere. Here: a letter compiled once and rendered for each recipient, every problem a
`TemplateError` naming the part (`field_prefix + part`: "subject", or "template.subject" in
the API).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from postroom.compose.html import html_document, html_is_blank, html_sanitize, html_to_text
from postroom.mail.header_text import check_header_text
from postroom.mail.merge import DEFAULT_MAX_OUTPUT_CHARS, SandboxField, merge_compile, merge_parse
from postroom.mail.merge_rules import TemplateError, part_label

# The merge field root that names the recipient (postroom.compose.merge_fields).
RECIPIENT_ROOT = "contact"


@dataclass(frozen=True)
class RenderedLetter:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class CompiledLetter:
    subject: SandboxField
    text: SandboxField
    html: SandboxField
    # Each part's source as compiled, by part name: read again only to name the fields of an
    # error (`letter_check_shared`).
    sources: Mapping[str, str] = field(default_factory=dict)

    def render(
        self, context: Mapping[str, Any], *, max_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    ) -> RenderedLetter:
        return RenderedLetter(
            subject=self.subject.render(context, max_chars=max_chars),
            text=self.text.render(context, max_chars=max_chars),
            html=self.html.render(context, max_chars=max_chars),
        )


def letter_compile(
    *,
    subject: str | None,
    text: str | None,
    html: str | None,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None = None,
    field_prefix: str = "",
) -> CompiledLetter:
    """Compile the three parts once; render each recipient with `.render(context)`.

    `roots` are the merge field names a letter may start with (None: any that is not
    Jinja's own); `fields` optionally lists each root's attributes (None: any).
    """
    return CompiledLetter(
        sources={"subject": subject or "", "text": text or "", "html": html or ""},
        subject=merge_compile(
            subject, part="subject", roots=roots, fields=fields, field=field_prefix + "subject"
        ),
        text=merge_compile(
            text, part="text", roots=roots, fields=fields, field=field_prefix + "text"
        ),
        html=merge_compile(
            html, part="html", roots=roots, fields=fields, field=field_prefix + "html"
        ),
    )


@dataclass(frozen=True)
class RenderedBody:
    subject: str
    text: str | None  # None: no such part
    html: str | None  # the HTML part's whole document


def body_render(
    compiled: CompiledLetter,
    context: Mapping[str, Any],
    *,
    max_chars: int,
    subject_field: str = "subject",
) -> RenderedBody:
    """Render subject and body for one recipient. The HTML is sanitized after rendering too
    (a value could hold a link), and without a text body the text part is generated.

    A subject a value put a line break in is refused (header injection), as `subject_field`:
    the field whose values are at fault. Each part renders at most `max_chars`.
    """
    rendered = compiled.render(context, max_chars=max_chars)
    subject = rendered.subject.strip()
    check_header_text(subject, label="Subject", what="the subject", field=subject_field)
    html = (
        html_sanitize(rendered.html) if rendered.html and not html_is_blank(rendered.html) else ""
    )
    text = rendered.text if rendered.text.strip() else (html_to_text(html) if html else "")
    return RenderedBody(
        subject=subject, text=text or None, html=html_document(html) if html else None
    )


def letter_check_shared(compiled: CompiledLetter, *, to_count: int, advice: str) -> None:
    """Refuse a letter that uses the recipient's merge fields in one email to `to_count` To
    recipients (not one): `{{ contact.first_name }}` names a single person, and filling it
    with nothing, or with the first of several, would be a wrong letter sent to everyone."""
    for part in (compiled.subject, compiled.text, compiled.html):
        if RECIPIENT_ROOT not in part.names:
            continue
        paths = merge_paths(
            compiled.sources.get(part.part, ""), part=part.part, is_html=part.is_html
        )
        listed = ", ".join(f"{{{{ {path} }}}}" for path in paths)
        which = "which is" if len(paths) == 1 else "which are"
        this = (
            f"this is one email to {to_count} To recipients"
            if to_count
            else "this email has no To recipient"
        )
        raise TemplateError(
            f"{part_label(part.part)} uses {listed}, {which} filled in for each recipient, but "
            f"{this}. {advice}",
            field=part.field,
        )


def merge_paths(source: str, *, part: str, is_html: bool, root: str = RECIPIENT_ROOT) -> list[str]:
    """The merge fields under `root` that `source` uses, in order, once each: "contact.name"
    for `{{ contact.name }}` and `{{ contact["name"] }}`, "contact" for the root used alone."""
    tree = merge_parse(source, part=part, field=part, is_html=is_html, roots=None)
    paths: list[str] = []
    named = 0
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        if not (isinstance(node.node, nodes.Name) and node.node.name == root):
            continue
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        else:
            continue
        named += 1
        if (path := f"{root}.{key}") not in paths:
            paths.append(path)
    uses = sum(1 for node in tree.find_all(nodes.Name) if node.name == root)
    return paths + [root] if uses > named else paths
