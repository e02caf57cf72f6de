"""Merge fields in a message's subject, text and HTML, rendered with Jinja2's sandbox (pure).

A template here is a letter with blanks, not a program, and what it may say is decided
before it runs:

* the parsed template is checked against an allow-list of constructs: output, merge fields
  (`contact.first_name`, `data["order-no"]`), constants, `if`/`elif`/`else`, conditional
  expressions, comparisons, `and`/`or`/`not`, and the filters and tests listed below. No
  loops, macros, calls, assignments, includes, arithmetic or `~`: without them every
  `{{ … }}` prints at most a few times its largest value, and the output grows only with the
  template's length (a loop, a string repeated by `*` or joined to itself by `~` could make
  gigabytes from one line), and the output cap below can stop it between two `{{ … }}`;
* attribute names starting with "_" and the names Jinja itself provides (`self`, `lipsum`,
  `cycler`, `range`, ...) are refused with a clear error: `{{ ''.__class__ }}` and friends
  never reach Python's object model;
* every name must be a merge field root the caller offers; with a `fields` schema, a
  root's attributes are checked too ("contact.middle_name is not a merge field");
* rendering runs in a `SandboxedEnvironment` with no globals and no loader (no file is ever
  read), `StrictUndefined` (a missing value is an error, never a silent blank), autoescape
  for HTML, and an attribute lookup that reads only the keys of the values given — never a
  Python attribute (so `order.items` is the data's "items", not the dict method);
* the output of each part is capped while it is produced.

Every problem is a `TemplateError` (a ValidationError) naming the part: subject, text or html.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.environment import Template
from jinja2.sandbox import SandboxedEnvironment

from postroom.core.errors import ValidationError

# A template is a letter, not a document store: 1,000,000 characters is about 500 printed
# pages, far beyond any real one, and keeps parsing a hostile one cheap.
MAX_SOURCE_CHARS = 1_000_000
# A rendered part is at most the default message size limit (POSTROOM_MAX_MESSAGE_BYTES,
# 25 MiB): no part can be larger than the whole message. Callers pass their own setting.
DEFAULT_MAX_OUTPUT_CHARS = 25 * 1024 * 1024

PARTS = ("subject", "text", "html")

# Filters that format one value and cannot grow it beyond a small factor: no `replace`,
# `center`, `indent`, `format`, `wordwrap`, `join` (their width or repetition is unbounded),
# no `urlencode` (chained, it triples the text each time), no `safe` or `forceescape` (a
# value must never decide it is HTML), no `map`/`attr`/`select*` (they call functions).
ALLOWED_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "int",
        "last",
        "length",
        "lower",
        "round",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "wordcount",
    }
)
ALLOWED_TESTS = frozenset(
    {
        "!=", "<", "<=", "==", ">", ">=",
        "boolean", "defined", "divisibleby", "eq", "equalto", "even", "false", "float",
        "ge", "greaterthan", "gt", "in", "integer", "le", "lessthan", "lower", "lt",
        "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "true",
        "undefined", "upper",
    }
)  # fmt: skip
# Names Jinja provides by itself (as globals or special variables). None is a merge field,
# and `self` reaches the template's own internals; saying "not allowed" beats "unknown".
RESERVED_NAMES = frozenset(
    {
        "self", "super", "loop", "caller", "varargs", "kwargs", "lipsum", "cycler",
        "joiner", "namespace", "range", "dict", "true", "false", "none", "True", "False",
        "None",
    }
)  # fmt: skip

# The expression and statement nodes a merge template may contain (see the module doc).
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.If,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Tuple,
    nodes.List,
)
_WHAT_IS_ALLOWED = (
    "merge fields such as {{ contact.first_name }}, {% if %}/{% else %} and simple filters "
    "such as |upper or |default"
)
# A Jinja tag in HTML made by a rich-text editor: the editor writes `>` as `&gt;` even there.
_TAG_IN_HTML = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class TemplateError(ValidationError):
    """A template that cannot be used: bad syntax, something not allowed, a missing value."""

    code = "invalid_template"


@dataclass(frozen=True)
class RenderedParts:
    subject: str
    text: str
    html: str


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
        # Keep the text exactly as written: a newline after a tag is part of the letter.
        keep_trailing_newline=True,
    )
    environment.globals.clear()
    environment.filters = {name: DEFAULT_FILTERS[name] for name in ALLOWED_FILTERS}
    environment.tests = {name: DEFAULT_TESTS[name] for name in ALLOWED_TESTS}
    return environment


_PLAIN = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _part_label(part: str) -> str:
    return {"subject": "The subject", "text": "The text", "html": "The HTML body"}.get(
        part, f"The {part}"
    )


def _dotted(node: nodes.Node) -> str | None:
    """`contact.first_name` for a Getattr chain on a Name; None for anything else."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _dotted(node.node)
        return f"{inner}.{node.attr}" if inner else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _dotted(node.node)
        return f"{inner}[{node.arg.value!r}]" if inner else None
    return None


def _not_allowed(part: str, what: str, *, field: str, lineno: int | None) -> TemplateError:
    where = f" (line {lineno})" if lineno else ""
    return TemplateError(
        f"{_part_label(part)} uses {what}{where}, which is not allowed in a template. "
        f"Templates may use {_WHAT_IS_ALLOWED}.",
        field=field,
    )


def _check_tree(
    tree: nodes.Template,
    *,
    part: str,
    field: str,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None,
) -> None:
    for node in tree.find_all(nodes.Node):
        lineno = getattr(node, "lineno", None)
        if not isinstance(node, _ALLOWED_NODES):
            raise _not_allowed(part, _node_description(node), field=field, lineno=lineno)
        if isinstance(node, nodes.Name):
            _check_name(node.name, part=part, field=field, roots=roots, lineno=lineno)
        elif isinstance(node, nodes.Getattr):
            if node.attr.startswith("_"):
                raise _not_allowed(part, f"the attribute {node.attr!r}", field=field, lineno=lineno)
            _check_known_attribute(node, part=part, field=field, fields=fields)
        elif isinstance(node, nodes.Getitem):
            argument = node.arg
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
                if argument.value.startswith("_"):
                    raise _not_allowed(
                        part, f"the key {argument.value!r}", field=field, lineno=lineno
                    )
            elif not isinstance(argument, nodes.Const | nodes.Slice):
                raise _not_allowed(
                    part, "a computed key (write it as a constant)", field=field, lineno=lineno
                )
        elif isinstance(node, nodes.Tuple | nodes.List):
            # A list of constants, for `in`; a list of values would print them repeated.
            if not all(isinstance(item, nodes.Const) for item in node.items):
                raise _not_allowed(
                    part,
                    "a list of merge fields (list constants only)",
                    field=field,
                    lineno=lineno,
                )
        elif isinstance(node, nodes.Filter):
            if node.name not in ALLOWED_FILTERS:
                raise _not_allowed(part, f"the filter |{node.name}", field=field, lineno=lineno)
        elif isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            raise _not_allowed(part, f"the test 'is {node.name}'", field=field, lineno=lineno)


def _node_description(node: nodes.Node) -> str:
    descriptions: dict[type[nodes.Node], str] = {
        nodes.For: "a {% for %} loop",
        nodes.Macro: "a {% macro %}",
        nodes.CallBlock: "a {% call %} block",
        nodes.Call: "a function call",
        nodes.Assign: "{% set %}",
        nodes.AssignBlock: "{% set %}",
        nodes.Include: "{% include %}",
        nodes.Import: "{% import %}",
        nodes.FromImport: "{% import %}",
        nodes.Extends: "{% extends %}",
        nodes.Block: "a {% block %}",
        nodes.Mul: "the * operator",
        nodes.Add: "the + operator (write {{ a }}{{ b }})",
        nodes.Sub: "the - operator",
        nodes.Neg: "the - operator",
        nodes.Pos: "the + operator",
        nodes.Concat: "the ~ operator (write {{ a }}{{ b }})",
        nodes.Pow: "the ** operator",
        nodes.Mod: "the % operator",
        nodes.Div: "the / operator",
        nodes.FloorDiv: "the // operator",
        nodes.Dict: "a dictionary",
        nodes.FilterBlock: "a {% filter %} block",
        nodes.With: "{% with %}",
        nodes.ScopedEvalContextModifier: "{% autoescape %}",
        nodes.EvalContextModifier: "{% autoescape %}",
    }
    return descriptions.get(type(node), f"the construct {type(node).__name__}")


def _check_name(
    name: str, *, part: str, field: str, roots: Collection[str] | None, lineno: int | None
) -> None:
    if name in RESERVED_NAMES or name.startswith("_"):
        raise _not_allowed(part, f"{name!r}", field=field, lineno=lineno)
    if roots is not None and name not in roots:
        where = f" (line {lineno})" if lineno else ""
        raise TemplateError(
            f"{_part_label(part)} uses {{{{ {name} }}}}{where}, which is not a merge field. "
            f"The merge fields start with {_listed(sorted(roots))}.",
            field=field,
        )


def _check_known_attribute(
    node: nodes.Getattr,
    *,
    part: str,
    field: str,
    fields: Mapping[str, Collection[str] | None] | None,
) -> None:
    """With a schema, `contact.middle_name` is refused when saving, not when sending."""
    if fields is None or not isinstance(node.node, nodes.Name):
        return
    known = fields.get(node.node.name)
    if known is None or node.attr in known:
        return
    raise TemplateError(
        f"{_part_label(part)} uses {node.node.name}.{node.attr}, which is not a merge field. "
        f"The {node.node.name} fields are "
        f"{_listed(f'{node.node.name}.{name}' for name in known)}.",
        field=field,
    )


def _listed(names: Any) -> str:
    return ", ".join(str(name) for name in names)


@dataclass(frozen=True)
class CompiledPart:
    part: str
    field: str
    template: Template | None  # None: the part is empty
    is_html: bool


def html_tags_unescaped(source: str) -> str:
    """Undo HTML escaping inside `{{ }}` and `{% %}` of HTML from a rich-text editor.

    An editor (and the sanitizer) writes a `>` typed in a tag as `&gt;` and two spaces as
    `&nbsp;`; Jinja would read those literally. Only the tags change, never the text.
    """
    return _TAG_IN_HTML.sub(
        lambda match: html_lib.unescape(match.group()).replace("\xa0", " "), source
    )


def part_compile(
    source: str | None,
    *,
    part: str,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None = None,
    field: str | None = None,
) -> CompiledPart:
    """Parse, check and compile one part. `part` is "subject", "text" or "html".

    `roots` are the names a merge field may start with; None allows any name that is not
    Jinja's own (a saved template may name fields the API's data will fill).
    """
    field = field or part
    is_html = part == "html"
    if not source:
        return CompiledPart(part, field, None, is_html)
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(
            f"{_part_label(part)} is {len(source):,} characters long; a template may have "
            f"at most {MAX_SOURCE_CHARS:,}.",
            field=field,
        )
    environment = _HTML if is_html else _PLAIN
    if is_html:
        source = html_tags_unescaped(source)
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateError(
            f"{_part_label(part)} has a template syntax error on line {error.lineno}: "
            f"{(error.message or '').rstrip('.')}. Merge fields are written "
            "{{ contact.first_name }}.",
            field=field,
        ) from None
    _check_tree(tree, part=part, field=field, roots=roots, fields=fields)
    # The checked tree is compiled as it is: no second parse (and no constant folding
    # before the check, which could evaluate an expression at compile time).
    return CompiledPart(part, field, environment.from_string(tree), is_html)


def part_render(
    compiled: CompiledPart,
    context: Mapping[str, Any],
    *,
    max_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> str:
    """Render one compiled part with `context`; stop with an error past `max_chars`."""
    if compiled.template is None:
        return ""
    produced = 0
    chunks: list[str] = []
    try:
        for chunk in compiled.template.generate(dict(context)):
            produced += len(chunk)
            if produced > max_chars:
                raise TemplateError(
                    f"{_part_label(compiled.part)} renders to more than {max_chars:,} "
                    "characters, the limit of a message.",
                    field=compiled.field,
                )
            chunks.append(chunk)
    except UndefinedError as error:
        raise TemplateError(
            f"{_part_label(compiled.part)} uses a merge field that has no value here "
            f"({_undefined_text(error)}). Check the spelling, or give a fallback with "
            '|default("...").',
            field=compiled.field,
        ) from None
    except TemplateError:
        raise
    except (JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError) as error:
        # The template is user input: whatever it trips over is a fault of the template,
        # said in words, never a server error.
        raise TemplateError(
            f"{_part_label(compiled.part)} could not be rendered: {error}.",
            field=compiled.field,
        ) from None
    except RecursionError:
        raise TemplateError(
            f"{_part_label(compiled.part)} is nested too deeply to render.",
            field=compiled.field,
        ) from None
    return "".join(chunks)


def _undefined_text(error: UndefinedError) -> str:
    message = str(error.message or "")
    # Jinja says "'dict object' has no attribute 'x'"; the type is no help to a letter writer.
    match = re.search(r"has no attribute '([^']*)'", message)
    if match:
        return f"nothing is called {match.group(1)!r}"
    return message


@dataclass(frozen=True)
class CompiledTemplate:
    subject: CompiledPart
    text: CompiledPart
    html: CompiledPart

    def render(
        self, context: Mapping[str, Any], *, max_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    ) -> RenderedParts:
        return RenderedParts(
            subject=part_render(self.subject, context, max_chars=max_chars),
            text=part_render(self.text, context, max_chars=max_chars),
            html=part_render(self.html, context, max_chars=max_chars),
        )


def template_compile(
    *,
    subject: str | None,
    text: str | None,
    html: str | None,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None = None,
    field_prefix: str = "",
) -> CompiledTemplate:
    """Compile the three parts once; render each recipient with `.render(context)`.

    `roots` are the merge field names a template may start with; `fields` optionally lists
    each root's attributes (None: any). Errors name the part, as `field_prefix + part`.
    """
    return CompiledTemplate(
        subject=part_compile(
            subject, part="subject", roots=roots, fields=fields, field=field_prefix + "subject"
        ),
        text=part_compile(
            text, part="text", roots=roots, fields=fields, field=field_prefix + "text"
        ),
        html=part_compile(
            html, part="html", roots=roots, fields=fields, field=field_prefix + "html"
        ),
    )


def template_render(
    *,
    subject: str | None,
    text: str | None,
    html: str | None,
    context: Mapping[str, Any],
    fields: Mapping[str, Collection[str] | None] | None = None,
    max_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> RenderedParts:
    """Compile and render in one step (one recipient); the roots are the context's keys."""
    compiled = template_compile(
        subject=subject, text=text, html=html, roots=context.keys(), fields=fields
    )
    return compiled.render(context, max_chars=max_chars)


def merge_root_check(name: str, *, field: str = "data") -> None:
    """Refuse a merge field root a template could not use, such as a key of API data."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise TemplateError(
            f"{name!r} cannot be a merge field name: use letters, digits and _, starting "
            "with a letter.",
            field=field,
        )
    if name in RESERVED_NAMES:
        raise TemplateError(
            f"{name!r} cannot be a merge field name: Jinja reserves it.", field=field
        )
