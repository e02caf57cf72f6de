"""A letter's three parts, subject, text and HTML, compiled in the merge language (pure).

The language itself (Jinja's syntax in its sandbox, its allow-list, the fast form bulk mail
uses) is postroom.mail.merge, shared with the bulk renderer so that a user writes one syntax
everywhere. Here: a letter compiled once and rendered for each recipient, every problem a
`TemplateError` naming the part (`field_prefix + part`: "subject", or "template.subject" in
the API).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from postroom.mail.merge import DEFAULT_MAX_OUTPUT_CHARS, SandboxField, merge_compile


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
