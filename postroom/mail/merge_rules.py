"""What a merge template may contain: the allow-list, checked on the parsed template (pure).

Postroom has one merge language, Jinja2's syntax in its sandbox (postroom.mail.merge), and a
template is a letter with blanks, not a program: what it may say is decided before it runs.

* The parsed template is checked against an allow-list of constructs: output, merge fields
  (`contact.first_name`, `data["order-no"]`), constants, `if`/`elif`/`else`, conditional
  expressions, comparisons, `and`/`or`/`not`, and the filters and tests listed below. No
  loops, macros, calls, assignments, includes, arithmetic or `~`: without them every
  `{{ … }}` prints at most a few times its largest value, and the output grows only with the
  template's length (a loop, a string repeated by `*` or joined to itself by `~` could make
  gigabytes from one line), so an output cap can stop it between two `{{ … }}`.
* Attribute names starting with "_" and the names Jinja itself provides (`self`, `lipsum`,
  `cycler`, `range`, ...) are refused with a clear error: `{{ ''.__class__ }}` and friends
  never reach Python's object model.
* Every name must be a merge field root the caller offers (None: any name that is not
  Jinja's own); with a `fields` schema, a root's attributes are checked too
  ("contact.middle_name is not a merge field").

Every problem is a `TemplateError` (a ValidationError) naming the part: subject, text, html.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from jinja2 import nodes

from postroom.core.errors import ValidationError

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
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NODE_DESCRIPTIONS: dict[type[nodes.Node], str] = {
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


class TemplateError(ValidationError):
    """A template that cannot be used: bad syntax, something not allowed, a missing value."""

    code = "invalid_template"


def part_label(part: str) -> str:
    """How an error names the part: "The subject", "The HTML body", "The template"."""
    return {"subject": "The subject", "text": "The text", "html": "The HTML body"}.get(
        part, f"The {part}"
    )


def _not_allowed(part: str, what: str, *, field: str, lineno: int | None) -> TemplateError:
    where = f" (line {lineno})" if lineno else ""
    return TemplateError(
        f"{part_label(part)} uses {what}{where}, which is not allowed in a template. "
        f"Templates may use {_WHAT_IS_ALLOWED}.",
        field=field,
    )


def merge_tree_check(
    tree: nodes.Template,
    *,
    part: str,
    field: str,
    roots: Collection[str] | None,
    fields: Mapping[str, Collection[str] | None] | None,
) -> None:
    """Refuse anything in the parsed template that is not on the allow-list."""
    for node in tree.find_all(nodes.Node):
        lineno = getattr(node, "lineno", None)
        if not isinstance(node, _ALLOWED_NODES):
            description = _NODE_DESCRIPTIONS.get(type(node), f"the construct {type(node).__name__}")
            raise _not_allowed(part, description, field=field, lineno=lineno)
        if isinstance(node, nodes.Name):
            _check_name(node.name, part=part, field=field, roots=roots, lineno=lineno)
        elif isinstance(node, nodes.Getattr):
            if node.attr.startswith("_"):
                raise _not_allowed(part, f"the attribute {node.attr!r}", field=field, lineno=lineno)
            _check_known_attribute(node, part=part, field=field, fields=fields)
        elif isinstance(node, nodes.Getitem):
            _check_key(node, part=part, field=field, lineno=lineno)
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


def _check_key(node: nodes.Getitem, *, part: str, field: str, lineno: int | None) -> None:
    argument = node.arg
    if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
        if argument.value.startswith("_"):
            raise _not_allowed(part, f"the key {argument.value!r}", field=field, lineno=lineno)
    elif not isinstance(argument, nodes.Const | nodes.Slice):
        raise _not_allowed(
            part, "a computed key (write it as a constant)", field=field, lineno=lineno
        )


def _check_name(
    name: str, *, part: str, field: str, roots: Collection[str] | None, lineno: int | None
) -> None:
    if name in RESERVED_NAMES or name.startswith("_"):
        raise _not_allowed(part, f"{name!r}", field=field, lineno=lineno)
    if roots is not None and name not in roots:
        where = f" (line {lineno})" if lineno else ""
        raise TemplateError(
            f"{part_label(part)} uses {{{{ {name} }}}}{where}, which is not a merge field. "
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
        f"{part_label(part)} uses {node.node.name}.{node.attr}, which is not a merge field. "
        f"The {node.node.name} fields are "
        f"{_listed(f'{node.node.name}.{name}' for name in known)}.",
        field=field,
    )


def _listed(names: Iterable[object]) -> str:
    return ", ".join(str(name) for name in names)


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
