"""Merge fields: how a bulk template's text gets each recipient's values.

This is a seam, because the merge language is not the MIME layer's business: for now
`PlaceholderFiller` substitutes `{{ name }}` and nothing else; the campaign issue brings Jinja2's
sandbox, which plugs in as another `FieldFiller` (compile once with
`SandboxedEnvironment.from_string`, render per recipient) without touching the encoding work in
`postroom.mail.bulk`. A filler compiles each field once so that the per-recipient cost is only
the fill, says whether a field is static (then it is encoded once, at compile time), and may
split a body into lines that fill independently (then only the lines with merge fields are
re-encoded per recipient; a Jinja block spanning lines would return None there).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Protocol

from postroom.core.errors import ValidationError


class CompiledField(Protocol):
    """One template field (subject, text, html or a header value), ready to fill."""

    @property
    def is_static(self) -> bool:
        """True when the field has no merge fields."""
        ...

    @property
    def names(self) -> frozenset[str]:
        """The merge fields it uses (enqueue can check a recipient has them all)."""
        ...

    def fill(self, values: Mapping[str, object]) -> str: ...

    def split_lines(self) -> list[CompiledField] | None:
        """The field cut at each LF into fields that fill on their own, or None if it cannot be."""
        ...


class FieldFiller(Protocol):
    def compile(self, source: str, *, is_html: bool) -> CompiledField:
        """Compile `source`; with `is_html` the values are HTML-escaped when filled."""
        ...


_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")


class PlaceholderField:
    """A field with `{{ name }}` placeholders, compiled to a str.format pattern (C speed)."""

    __slots__ = ("source", "is_html", "names", "_order", "_pattern", "_spans_lines")

    def __init__(
        self,
        source: str,
        literals: list[str],
        placeholders: list[str],
        *,
        is_html: bool,
        spans_lines: bool,
    ) -> None:
        self.source = source
        self.is_html = is_html
        self.names = frozenset(placeholders)
        self._spans_lines = spans_lines
        # Each distinct name is looked up (and escaped) once, however often it is used.
        self._order = tuple(dict.fromkeys(placeholders))
        index = {name: position for position, name in enumerate(self._order)}
        pattern = [_brace_escape(literals[0])]
        for name, literal in zip(placeholders, literals[1:], strict=True):
            pattern.append(f"{{{index[name]}}}")
            pattern.append(_brace_escape(literal))
        self._pattern = "".join(pattern)

    @property
    def is_static(self) -> bool:
        return not self._order

    def fill(self, values: Mapping[str, object]) -> str:
        if not self._order:
            return self.source
        try:
            found = [values[name] for name in self._order]
        except KeyError as exc:
            raise ValidationError(
                f"The template uses {{{{ {exc.args[0]} }}}} but this recipient has no value "
                "for it.",
                field="values",
            ) from None
        # Recipient data comes from JSON: a missing value (None) reads as nothing, not "None".
        texts = [
            value if value.__class__ is str else ("" if value is None else str(value))
            for value in found
        ]
        if self.is_html:
            texts = [html.escape(text) for text in texts]
        return self._pattern.format(*texts)

    def split_lines(self) -> list[CompiledField] | None:
        if self._spans_lines:
            return None
        filler = PlaceholderFiller()
        return [filler.compile(line, is_html=self.is_html) for line in self.source.split("\n")]


def _brace_escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


class PlaceholderFiller:
    """`{{ name }}` placeholders, filled from the recipient's values; nothing else.

    Any other `{{ … }}` is refused at compile time rather than sent verbatim, so a template
    written for the richer engine to come fails loudly instead of mailing raw markup.
    """

    def compile(self, source: str, *, is_html: bool) -> PlaceholderField:
        literals: list[str] = []
        names: list[str] = []
        position = 0
        spans_lines = False
        for match in _PLACEHOLDER.finditer(source):
            name = _NAME.fullmatch(match.group(1))
            if name is None:
                raise ValidationError(
                    f"{match.group()!r} is not a merge field; write {{{{ name }}}} with a "
                    "letter, digits and underscores.",
                    field="template",
                )
            spans_lines |= "\n" in match.group()
            literals.append(source[position : match.start()])
            names.append(name.group(1))
            position = match.end()
        literals.append(source[position:])
        return PlaceholderField(source, literals, names, is_html=is_html, spans_lines=spans_lines)


PLACEHOLDER_FILLER = PlaceholderFiller()
