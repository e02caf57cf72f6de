"""Merge fields rendered in Jinja2's sandbox: values, errors, escaping and sandbox escapes."""

from __future__ import annotations

import pytest

from postroom.core.errors import ValidationError
from postroom.mail.templating import (
    TemplateError,
    html_tags_unescaped,
    merge_root_check,
    part_compile,
    part_render,
    template_compile,
    template_render,
)

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
    compiled = part_compile(source, part=part, roots=FIELDS, fields=FIELDS)
    return part_render(compiled, context or CONTEXT)


def refused(source: str, *, part: str = "text") -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(source, part=part)
    return caught.value


def test_merge_fields_are_filled_in_subject_text_and_html() -> None:
    rendered = template_render(
        subject="Your quote, {{ contact.first_name }}",
        text="Dear {{ contact.name }},\n\n{{ user.name }}, {{ company.name }}\n",
        html="<p>Dear {{ contact.first_name }} of {{ contact.company }}</p>",
        context=CONTEXT,
        fields=FIELDS,
    )
    assert rendered.subject == "Your quote, Ann"
    assert rendered.text == "Dear Ann Smith,\n\nAlice Jones, Acme\n"
    assert rendered.html == "<p>Dear Ann of Globex</p>"


def test_conditions_and_simple_filters_work() -> None:
    source = (
        "{% if contact.first_name %}Dear {{ contact.first_name|upper }}"
        "{% else %}Hello{% endif %}, {{ contact.last_name or 'friend' }}"
    )
    assert render(source) == "Dear ANN, Smith"
    empty = {**CONTEXT, "contact": dict.fromkeys(FIELDS["contact"], "")}
    assert render(source, context=empty) == "Hello, friend"


def test_a_compiled_template_renders_each_recipient_with_their_values() -> None:
    compiled = template_compile(
        subject="Hi {{ contact.first_name }}", text="", html="", roots=FIELDS, fields=FIELDS
    )
    bob = {**CONTEXT, "contact": {**CONTEXT["contact"], "first_name": "Bob"}}
    assert compiled.render(CONTEXT).subject == "Hi Ann"
    assert compiled.render(bob).subject == "Hi Bob"


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
    compiled = part_compile("Order {{ order.number }}", part="text", roots=["order"])
    with pytest.raises(TemplateError, match="no value here.*'number'"):
        part_render(compiled, {"order": {}})
    assert part_render(compiled, {"order": {"number": 1042}}) == "Order 1042"


def test_a_default_covers_a_missing_value() -> None:
    compiled = part_compile('{{ order.note|default("none") }}', part="text", roots=["order"])
    assert part_render(compiled, {"order": {}}) == "none"


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
    compiled = part_compile("{{ order.items }} {{ order.keys }}", part="text", roots=["order"])
    assert part_render(compiled, {"order": {"items": 3, "keys": "k"}}) == "3 k"
    with pytest.raises(TemplateError, match="no value"):
        part_render(compiled, {"order": {}})  # not dict.items


def test_the_output_is_capped() -> None:
    compiled = part_compile("{{ data.big }}{{ data.big }}", part="text", roots=["data"])
    assert part_render(compiled, {"data": {"big": "x" * 10}}, max_chars=20) == "x" * 20
    with pytest.raises(TemplateError, match="more than 19 characters"):
        part_render(compiled, {"data": {"big": "x" * 10}}, max_chars=19)


def test_an_oversize_template_is_refused_before_parsing() -> None:
    with pytest.raises(TemplateError, match="at most 1,000,000"):
        part_compile("x" * 1_000_001, part="text", roots=[])


def test_an_empty_part_renders_empty() -> None:
    assert part_render(part_compile("", part="html", roots=[]), {}) == ""
    assert part_render(part_compile(None, part="html", roots=[]), {}) == ""


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
