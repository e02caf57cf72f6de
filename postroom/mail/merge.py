"""The one merge language: Jinja2's syntax in its sandbox, narrowed to letters (pure).

Users write one syntax everywhere: Contact Email and its saved templates, the API's templates
with `data`, and bulk templates (campaigns): `{{ contact.first_name }}`, `{% if %}`,
`|default("…")`. What a template may contain is the allow-list of postroom.mail.merge_rules,
checked on the parsed template before anything runs.

A field (a subject, a body, a header value) is filled in one of two ways, with one output:

* `SandboxField` renders with Jinja's `SandboxedEnvironment`: no globals and no loader (no
  file is ever read), `StrictUndefined` (a missing value is an error, never a silent blank),
  autoescape for HTML, attribute lookups that read only the keys of the values given (never a
  Python attribute: `order.items` is the data's "items", not the dict method), and an output
  cap checked while the text is produced.
* `PlaceholderField` is the fast form of the simple-variable subset, text with `{{ name }}`,
  `{{ a.b }}` or `{{ a["b"] }}` and nothing else, compiled from the same parse into one
  `str.format` pattern (C speed). The bulk renderer (postroom.mail.bulk) needs it for its
  2,000 messages a second (docs/performance.md). A bulk template that uses `{% if %}` or a
  filter gets a `SandboxField` and runs the sandbox for each recipient instead.

Both print a value the same way: None as nothing (recipient data comes from JSON, where a
missing value is null; "None" in a letter is never meant), anything else as `str()`, escaped
by markupsafe in HTML. tests/mail/test_merge_language.py checks the two give identical output
on the subset. `MERGE_FILLER` is what the bulk renderer compiles with (its `FieldFiller` seam).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.environment import Template
from jinja2.sandbox import SandboxedEnvironment

from postroom.core.errors import ValidationError
from postroom.mail.merge_rules import (
    ALLOWED_FILTERS,
    ALLOWED_TESTS,
    TemplateError,
    merge_tree_check,
    part_label,
)

# A template is a letter, not a document store: 1,000,000 characters is about 500 printed
# pages, far beyond any real one, and keeps parsing a hostile one cheap.
MAX_SOURCE_CHARS = 1_000_000
# A rendered part is at most the default message size limit (POSTROOM_MAX_MESSAGE_BYTES,
# 25 MiB): no part can be larger than the whole message. Callers pass their own setting.
DEFAULT_MAX_OUTPUT_CHARS = 25 * 1024 * 1024
# A Jinja tag in HTML made by a rich-text editor: the editor writes `>` as `&gt;` even there.
_TAG_IN_HTML = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
# What makes a template's meaning depend on more than one line: statements, comments, and
# whitespace control (`-}}` eats the line end after it).
_CROSSES_LINES = re.compile(r"\{%|\{#|\{\{-|-\}\}")


class CompiledField(Protocol):
    """One template field (subject, text, html or a header value), ready to fill."""

    @property
    def is_static(self) -> bool:
        """True when the field has no merge fields."""
        ...

    @property
    def names(self) -> frozenset[str]:
        """The merge field roots it uses (enqueue can check a recipient has them all)."""
        ...

    def fill(self, values: Mapping[str, object]) -> str: ...

    def split_lines(self) -> list[CompiledField] | None:
        """The field cut at each LF into fields that fill on their own, or None if it cannot be."""
        ...


class FieldFiller(Protocol):
    def compile(self, source: str, *, is_html: bool) -> CompiledField:
        """Compile `source`; with `is_html` the values are HTML-escaped when filled."""
        ...


def _printed(value: Any) -> Any:
    """What `{{ … }}` prints for a value: None prints as nothing (see the module doc)."""
    return "" if value is None else value


class _MergeSandbox(SandboxedEnvironment):
    """Jinja's sandbox, reading merge values by key only.

    Merge values are plain data (mappings, lists, strings, numbers). Jinja would look up
    `x.y` as a Python attribute first; here it is the key "y" or nothing, so no method or
    dunder of a value is ever reached, even should the static check miss a path.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and not attribute.startswith("_"):
            try:
                return obj[attribute]
            except KeyError:
                pass
        return self.undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, list | tuple | str) and isinstance(argument, int | slice):
            try:
                return obj[argument]
            except IndexError:
                pass
        return self.undefined(obj=obj, name=str(argument))


def _environment(*, autoescape: bool) -> _MergeSandbox:
    environment = _MergeSandbox(
        autoescape=autoescape,
        undefined=StrictUndefined,
        loader=None,
        finalize=_printed,
        # Keep the text exactly as written: a newline after a tag is part of the letter.
        keep_trailing_newline=True,
    )
    environment.globals.clear()
    environment.filters = {name: DEFAULT_FILTERS[name] for name in ALLOWED_FILTERS}
    environment.tests = {name: DEFAULT_TESTS[name] for name in ALLOWED_TESTS}
    return environment


_PLAIN = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def html_tags_unescaped(source: str) -> str:
    """Undo HTML escaping inside `{{ }}` and `{% %}` of HTML from a rich-text editor.

    An editor (and the sanitizer) writes a `>` typed in a tag as `&gt;` and two spaces as
    `&nbsp;`; Jinja would read those literally. Only the tags change, never the text.
    """
    return _TAG_IN_HTML.sub(
        lambda match: html_lib.unescape(match.group()).replace("\xa0", " "), source
    )


def merge_parse(
    source: str,
    *,
    part: str,
    field: str,
    is_html: bool,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None = None,
) -> nodes.Template:
    """Parse `source` and check it against the allow-list; raise TemplateError naming `part`.

    `roots` are the names a merge field may start with; None allows any name that is not
    Jinja's own (a saved template may name fields the API's data will fill).
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(
            f"{part_label(part)} is {len(source):,} characters long; a template may have "
            f"at most {MAX_SOURCE_CHARS:,}.",
            field=field,
        )
    if is_html:
        source = html_tags_unescaped(source)
    try:
        tree = (_HTML if is_html else _PLAIN).parse(source)
    except TemplateSyntaxError as error:
        raise TemplateError(
            f"{part_label(part)} has a template syntax error on line {error.lineno}: "
            f"{(error.message or '').rstrip('.')}. Merge fields are written "
            "{{ contact.first_name }}.",
            field=field,
        ) from None
    merge_tree_check(tree, part=part, field=field, roots=roots, fields=fields)
    return tree


def merge_compile(
    source: str | None,
    *,
    part: str,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None = None,
    field: str | None = None,
) -> SandboxField:
    """Parse, check and compile one part of a letter: "subject", "text" or "html"."""
    field = field or part
    is_html = part == "html"
    if not source:
        return SandboxField(None, source="", part=part, field=field, is_html=is_html)
    tree = merge_parse(source, part=part, field=field, is_html=is_html, roots=roots, fields=fields)
    return SandboxField(tree, source=source, part=part, field=field, is_html=is_html)


class SandboxField:
    """A checked template, rendered in the sandbox with an output cap."""

    def __init__(
        self, tree: nodes.Template | None, *, source: str, part: str, field: str, is_html: bool
    ) -> None:
        self.part = part
        self.field = field
        self.is_html = is_html
        self._source = source
        self.names = (
            frozenset(node.name for node in tree.find_all(nodes.Name)) if tree else frozenset()
        )
        # The checked tree is compiled as it is: no second parse (and no constant folding
        # before the check, which could evaluate an expression at compile time).
        environment = _HTML if is_html else _PLAIN
        self.template: Template | None = environment.from_string(tree) if tree is not None else None

    @property
    def is_static(self) -> bool:
        return not self.names

    def fill(self, values: Mapping[str, object]) -> str:
        return self.render(values)

    def render(
        self, context: Mapping[str, Any], *, max_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    ) -> str:
        """Render with `context`; stop with an error past `max_chars`."""
        if self.template is None:
            return ""
        produced = 0
        chunks: list[str] = []
        try:
            for chunk in self.template.generate(dict(context)):
                produced += len(chunk)
                if produced > max_chars:
                    raise TemplateError(  # noqa: TRY301 - stops the rendering loop, reported like the template's own errors
                        f"{part_label(self.part)} renders to more than {max_chars:,} "
                        "characters, the limit of a message.",
                        field=self.field,
                    )
                chunks.append(chunk)
        except UndefinedError as error:
            raise TemplateError(
                f"{part_label(self.part)} uses a merge field that has no value here "
                f"({_undefined_text(error)}). Check the spelling, or give a fallback with "
                '|default("...").',
                field=self.field,
            ) from None
        except TemplateError:
            raise
        except (JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError) as error:
            # The template is user input: whatever it trips over is a fault of the template,
            # said in words, never a server error.
            raise TemplateError(
                f"{part_label(self.part)} could not be rendered: {error}.", field=self.field
            ) from None
        except RecursionError:
            raise TemplateError(
                f"{part_label(self.part)} is nested too deeply to render.", field=self.field
            ) from None
        return "".join(chunks)

    def split_lines(self) -> list[CompiledField] | None:
        """Lines that fill on their own: only when no tag, comment or whitespace control
        reaches past a line end (each line then parses alone)."""
        if _CROSSES_LINES.search(self._source):
            return None
        try:
            return [
                _field(line, part=self.part, field=self.field, is_html=self.is_html)
                for line in self._source.split("\n")
            ]
        except TemplateError:
            return None  # a {{ … }} spans lines


def _field(source: str, *, part: str, field: str, is_html: bool) -> CompiledField:
    """The fast form where the template is plain lookups, else the sandbox."""
    tree = merge_parse(source, part=part, field=field, is_html=is_html, roots=None)
    subset = _placeholders(tree)
    if subset is not None:
        return PlaceholderField(*subset, is_html=is_html)
    return SandboxField(tree, source=source, part=part, field=field, is_html=is_html)


def _undefined_text(error: UndefinedError) -> str:
    message = str(error.message or "")
    # Jinja says "'dict object' has no attribute 'x'"; the type is no help to a letter writer.
    match = re.search(r"has no attribute '([^']*)'", message)
    if match:
        return f"nothing is called {match.group(1)!r}"
    return message


# ---------------------------------------------------------------------------------------------
# The fast form of the simple-variable subset
# ---------------------------------------------------------------------------------------------

Path = tuple[str, ...]


def _path(node: nodes.Node) -> Path | None:
    """("a", "b") for `a.b` or `a["b"]`; None for anything that is not a plain lookup."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        inner = _path(node.node)
        return (*inner, node.attr) if inner else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        inner = _path(node.node)
        return (*inner, node.arg.value) if inner else None
    return None


def _placeholders(tree: nodes.Template) -> tuple[list[str], list[Path]] | None:
    """The template as text between plain lookups, or None when it uses more than that.

    The text is Jinja's own parse of it (comments dropped, whitespace control applied), so
    filling the lookups in gives what the sandbox gives.
    """
    literals = [""]
    paths: list[Path] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                literals[-1] += child.data
                continue
            path = _path(child)
            if path is None:
                return None
            paths.append(path)
            literals.append("")
    return literals, paths


class _Missing(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, path: Path) -> None:
        self.path = path


def _lookup(values: Mapping[str, object], path: Path) -> object:
    value: object = values
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            raise _Missing(path)
        value = value[key]
    return value


def _path_text(path: Path) -> str:
    return path[0] + "".join(f".{key}" if key.isidentifier() else f"[{key!r}]" for key in path[1:])


class PlaceholderField:
    """Text with plain lookups, compiled to a str.format pattern (C speed)."""

    __slots__ = ("is_html", "names", "_literals", "_paths", "_order", "_flat", "_pattern")

    def __init__(self, literals: list[str], paths: list[Path], *, is_html: bool) -> None:
        self.is_html = is_html
        self.names = frozenset(path[0] for path in paths)
        self._literals = literals
        self._paths = paths
        # Each distinct lookup is made (and escaped) once, however often it is used.
        self._order = tuple(dict.fromkeys(paths))
        # The common case, flat names, is looked up without a loop.
        self._flat = (
            tuple(path[0] for path in self._order)
            if all(len(path) == 1 for path in self._order)
            else None
        )
        index = {path: position for position, path in enumerate(self._order)}
        pattern = [_brace_escape(literals[0])]
        for path, literal in zip(paths, literals[1:], strict=True):
            pattern.append(f"{{{index[path]}}}")
            pattern.append(_brace_escape(literal))
        self._pattern = "".join(pattern)

    @property
    def is_static(self) -> bool:
        return not self._order

    def fill(self, values: Mapping[str, object]) -> str:
        if not self._order:
            return self._literals[0]
        try:
            if self._flat is not None:
                found = [values[name] for name in self._flat]
            else:
                found = [_lookup(values, path) for path in self._order]
        except KeyError as exc:
            raise _no_value(str(exc.args[0])) from None
        except _Missing as missing:
            raise _no_value(_path_text(missing.path)) from None
        texts = [
            value if value.__class__ is str else ("" if value is None else str(value))
            for value in found
        ]
        if self.is_html:
            texts = [_html_escaped(text) for text in texts]
        return self._pattern.format(*texts)

    def split_lines(self) -> list[CompiledField] | None:
        # Cut the parsed text, not the source: a lookup never holds a line end.
        lines: list[tuple[list[str], list[Path]]] = [([""], [])]
        for position, literal in enumerate(self._literals):
            first, *rest = literal.split("\n")
            lines[-1][0][-1] += first
            lines += [([piece], []) for piece in rest]
            if position < len(self._paths):
                lines[-1][1].append(self._paths[position])
                lines[-1][0].append("")
        return [PlaceholderField(text, paths, is_html=self.is_html) for text, paths in lines]


def _no_value(name: str) -> ValidationError:
    return ValidationError(
        f"The template uses {{{{ {name} }}}} but this recipient has no value for it.",
        field="values",
    )


def _html_escaped(text: str) -> str:
    # Exactly markupsafe.escape, which Jinja's autoescape uses (&#34; and &#39;, not &quot;),
    # as plain str replaces: without building a Markup object per value, twice as fast.
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _brace_escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


class PlaceholderFiller:
    """The simple-variable subset only: a template using more is refused."""

    def compile(self, source: str, *, is_html: bool) -> PlaceholderField:
        tree = merge_parse(source, part="template", field="template", is_html=is_html, roots=None)
        subset = _placeholders(tree)
        if subset is None:
            raise TemplateError(
                "The template uses more than merge fields ({{ name }}) here.", field="template"
            )
        return PlaceholderField(*subset, is_html=is_html)


class MergeFiller:
    """The merge language for bulk templates: the fast form where the template allows it,
    the sandbox per recipient where it must (see the module doc)."""

    def compile(self, source: str, *, is_html: bool) -> CompiledField:
        return _field(source, part="template", field="template", is_html=is_html)


MERGE_FILLER = MergeFiller()
