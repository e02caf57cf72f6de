"""The one merge language (postroom.mail.merge): values, errors, escaping, sandbox escapes, and
the fast form of plain lookups giving exactly what the sandbox gives."""

from __future__ import annotations

import random

import pytest

from postroom.core.errors import ValidationError
from postroom.mail.merge import (
    MERGE_FILLER,
    PlaceholderField,
    SandboxField,
    html_tags_unescaped,
    merge_compile,
)
from postroom.mail.merge_rules import TemplateError, merge_root_check

FIELDS = {
    "contact": ("first_name", "last_name", "name", "email", "company"),
    "user": ("name", "email"),
    "company": ("name",),
}
CONTEXT = {
    "contact": {
        "first_name": "Ann",
        "last_name": "Smith",
        "name": "Ann Smith",
        "email": "ann@example.com",
        "company": "Globex",
    },
    "user": {"name": "Alice Jones", "email": "alice@acme.example"},
    "company": {"name": "Acme"},
}


def render(source: str, *, part: str = "text", context: dict | None = None) -> str:
    compiled = merge_compile(source, part=part, roots=FIELDS, fields=FIELDS)
    return compiled.render(context or CONTEXT)


def refused(source: str, *, part: str = "text") -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(source, part=part)
    return caught.value


def test_conditions_and_simple_filters_work() -> None:
    source = (
        "{% if contact.first_name %}Dear {{ contact.first_name|upper }}"
        "{% else %}Hello{% endif %}, {{ contact.last_name or 'friend' }}"
    )
    assert render(source) == "Dear ANN, Smith"
    empty = {**CONTEXT, "contact": dict.fromkeys(FIELDS["contact"], "")}
    assert render(source, context=empty) == "Hello, friend"


def test_an_unknown_field_is_an_error_that_names_it() -> None:
    error = refused("Dear {{ contact.middle_name }}")
    assert "contact.middle_name, which is not a merge field" in error.message
    assert "contact.first_name" in error.message  # the fields that exist are listed
    assert error.field == "text"
    assert isinstance(error, ValidationError) and error.code == "invalid_template"

    error = refused("Dear {{ customer.name }}", part="subject")
    assert "{{ customer }}" in error.message and "not a merge field" in error.message
    assert error.field == "subject"


def test_a_value_missing_at_render_time_is_an_error_not_a_blank() -> None:
    compiled = merge_compile("Order {{ order.number }}", part="text", roots=["order"])
    with pytest.raises(TemplateError, match="no value here.*'number'"):
        compiled.render({"order": {}})
    assert compiled.render({"order": {"number": 1042}}) == "Order 1042"


def test_a_default_covers_a_missing_value() -> None:
    compiled = merge_compile('{{ order.note|default("none") }}', part="text", roots=["order"])
    assert compiled.render({"order": {}}) == "none"


def test_a_syntax_error_says_where() -> None:
    error = refused("Hello\n{{ contact.first_name ")
    assert "syntax error on line 2" in error.message


def test_values_are_escaped_in_html_and_left_alone_in_text() -> None:
    hostile = {
        **CONTEXT,
        "contact": {**CONTEXT["contact"], "name": '<script>alert(1)</script> & "x"'},
    }
    assert render("{{ contact.name }}", part="html", context=hostile) == (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34;"
    )
    assert render("{{ contact.name }}", part="text", context=hostile) == (
        '<script>alert(1)</script> & "x"'
    )


def test_a_value_cannot_mark_itself_safe() -> None:
    error = refused("{{ contact.name|safe }}", part="html")
    assert "|safe" in error.message and "not allowed" in error.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self }}",
        "{{ self.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner }}",
        "{{ namespace }}",
        "{{ range(10) }}",
        "{{ contact['__class__'] }}",
        "{{ contact.first_name.__class__ }}",
        "{{ contact|attr('__class__') }}",
        "{{ contact.first_name.upper() }}",
        "{% set x = 1 %}",
        "{% for c in contact.name %}{{ c }}{% endfor %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% include 'x' %}",
        "{% extends '/etc/passwd' %}",
        "{% autoescape false %}{{ contact.name }}{% endautoescape %}",
        "{{ 'x' * 1000000000 }}",
        "{{ 9 ** 9 ** 9 }}",
        "{{ '%999999999s' % 'x' }}",
        "{{ contact.name ~ contact.name }}",
        "{{ [contact.name, contact.name] }}",
        "{{ contact.name|replace('', 'xxxxxxxx') }}",
        "{{ contact.name|center(1000000000) }}",
        "{{ contact[contact.first_name] }}",
    ],
)
def test_a_sandbox_escape_fails_safely_with_a_clear_error(source: str) -> None:
    error = refused(source, part="html")
    assert "not allowed" in error.message
    assert error.field == "html"


def test_a_value_is_read_by_key_never_as_a_python_attribute() -> None:
    compiled = merge_compile("{{ order.items }} {{ order.keys }}", part="text", roots=["order"])
    assert compiled.render({"order": {"items": 3, "keys": "k"}}) == "3 k"
    with pytest.raises(TemplateError, match="no value"):
        compiled.render({"order": {}})  # not dict.items


def test_the_output_is_capped() -> None:
    compiled = merge_compile("{{ data.big }}{{ data.big }}", part="text", roots=["data"])
    assert compiled.render({"data": {"big": "x" * 10}}, max_chars=20) == "x" * 20
    with pytest.raises(TemplateError, match="more than 19 characters"):
        compiled.render({"data": {"big": "x" * 10}}, max_chars=19)


def test_an_oversize_template_is_refused_before_parsing() -> None:
    with pytest.raises(TemplateError, match="at most 1,000,000"):
        merge_compile("x" * 1_000_001, part="text", roots=[])


def test_an_empty_part_renders_empty() -> None:
    assert merge_compile("", part="html", roots=[]).render({}) == ""
    assert merge_compile(None, part="html", roots=[]).render({}) == ""


def test_tags_escaped_by_a_rich_text_editor_are_read_as_written() -> None:
    html = (
        "<p>{% if contact.first_name &gt; 'A' %}Hi&nbsp;{{ contact.first_name }}{% endif %}"
        " &gt; x</p>"
    )
    assert html_tags_unescaped(html) == (
        "<p>{% if contact.first_name > 'A' %}Hi&nbsp;{{ contact.first_name }}{% endif %} &gt; x</p>"
    )
    assert render(html, part="html") == "<p>Hi&nbsp;Ann &gt; x</p>"


@pytest.mark.parametrize("name", ["self", "lipsum", "order-no", "_private", "1st", ""])
def test_a_data_key_that_cannot_be_a_merge_field_is_refused(name: str) -> None:
    with pytest.raises(TemplateError) as caught:
        merge_root_check(name)
    assert caught.value.field == "data"


def test_a_good_data_key_passes() -> None:
    merge_root_check("order")
    merge_root_check("invoice_2024")


# -- one language, two ways to fill it -----------------------------------------------------

# Values as recipient data holds them (JSON): markup, quotes, braces, None, numbers, nesting.
VALUES: dict[str, object] = {
    "name": 'Zoë <b>O\'Neil</b> & "Co"',
    "empty": "",
    "nothing": None,
    "number": 1042,
    "price": 12.5,
    "yes": True,
    "braces": "{0} {name} }} {{",
    "lines": "one\ntwo\r\nthree",
    "order": {"number": "A-7", "total-sum": "€ 3 < 4", "customer": {"city": "Köln"}},
}
SUBSET_TEMPLATES = [
    "",
    "static text, {braces} and }} alone",
    "Dear {{ name }},",
    "{{name}}{{ name }}{{  name  }}",
    "{{ empty }}|{{ nothing }}|{{ number }}|{{ price }}|{{ yes }}",
    "{{ braces }} and {literal}",
    "a\n{{ lines }}\nb\n",
    "Order {{ order.number }}: {{ order['total-sum'] }} to {{ order.customer.city }}",
    "{# a comment #}kept{# another\nspanning lines #}\n",
    "{{ name -}}   \n  trimmed {{- name }}",
    "{% raw %}{{ not merged }}{% endraw %} {{ name }}",
    "trailing newline {{ name }}\n",
    "\n\n{{ name }}\n\n",
]


@pytest.mark.parametrize("source", SUBSET_TEMPLATES)
@pytest.mark.parametrize("is_html", [False, True])
def test_plain_lookups_fill_exactly_as_the_sandbox_renders(source: str, is_html: bool) -> None:
    fast = MERGE_FILLER.compile(source, is_html=is_html)
    assert isinstance(fast, PlaceholderField), "plain lookups take the fast form"
    sandbox = merge_compile(source, part="html" if is_html else "text", roots=None)
    assert fast.fill(VALUES) == sandbox.render(VALUES)


def test_random_lookup_templates_fill_exactly_as_the_sandbox_renders() -> None:
    rng = random.Random(9)
    pieces = [
        "a", " ", "é", "\n", "<p>", "&amp;", "{x}", "}}", "%", "{{ name }}", "{{ number }}",
        "{{ nothing }}", "{{ order.number }}", "{{ order['total-sum'] }}", "{# c #}", "\t",
        "{{- name }}", "{{ braces -}}", "\n\n",
    ]  # fmt: skip
    for _ in range(500):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for is_html in (False, True):
            fast = MERGE_FILLER.compile(source, is_html=is_html)
            expected = merge_compile(source, part="html" if is_html else "text", roots=None)
            assert fast.fill(VALUES) == expected.render(VALUES), (source, is_html)
            lines = fast.split_lines()
            assert lines is not None
            assert "\n".join(line.fill(VALUES) for line in lines) == fast.fill(VALUES), source


def test_a_bulk_template_with_conditions_and_filters_renders_in_the_sandbox() -> None:
    source = (
        '{% if name %}Dear {{ name|upper }}{% else %}Hello{% endif %}\n{{ city|default("-") }}\n'
    )
    field = MERGE_FILLER.compile(source, is_html=False)
    assert isinstance(field, SandboxField)
    assert field.names == {"name", "city"}
    assert field.fill({"name": "Ann"}) == "Dear ANN\n-\n"
    assert field.fill({"name": ""}) == "Hello\n-\n"
    assert field.split_lines() is None, "a block spanning lines fills as a whole"


def test_a_filter_on_one_line_still_fills_line_by_line() -> None:
    field = MERGE_FILLER.compile("Dear {{ name|title }},\nstatic\n{{ city }}", is_html=False)
    lines = field.split_lines()
    assert lines is not None and len(lines) == 3
    assert [line.is_static for line in lines] == [False, True, False]
    values = {"name": "ann lee", "city": "Köln"}
    assert "\n".join(line.fill(values) for line in lines) == field.fill(values)


def test_none_prints_as_nothing_in_both_forms() -> None:
    assert MERGE_FILLER.compile("[{{ v }}]", is_html=False).fill({"v": None}) == "[]"
    assert merge_compile("[{{ v }}]", part="text", roots=None).render({"v": None}) == "[]"


def test_a_missing_value_is_an_error_in_both_forms() -> None:
    with pytest.raises(ValidationError, match=r"\{\{ order.number \}\}"):
        MERGE_FILLER.compile("{{ order.number }}", is_html=False).fill({"order": {}})
    with pytest.raises(TemplateError, match="no value"):
        merge_compile("{{ order.number }}", part="text", roots=None).render({"order": {}})


def test_what_the_sandbox_refuses_the_bulk_filler_refuses() -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        MERGE_FILLER.compile("{{ ''.__class__ }}", is_html=True)
    with pytest.raises(TemplateError, match="syntax error"):
        MERGE_FILLER.compile("{{ name", is_html=False)
