"""A letter's subject, text and HTML compiled once and rendered for each recipient."""

from __future__ import annotations

import pytest

from postroom.compose.merge_fields import MERGE_FIELDS
from postroom.compose.templating import letter_compile
from postroom.mail.merge_rules import TemplateError

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


def test_merge_fields_are_filled_in_subject_text_and_html() -> None:
    rendered = letter_compile(
        subject="Your quote, {{ contact.first_name }}",
        text="Dear {{ contact.name }},\n\n{{ user.name }}, {{ company.name }}\n",
        html="<p>Dear {{ contact.first_name }} of {{ contact.company }}</p>",
        roots=CONTEXT.keys(),
        fields=MERGE_FIELDS,
    ).render(CONTEXT)
    assert rendered.subject == "Your quote, Ann"
    assert rendered.text == "Dear Ann Smith,\n\nAlice Jones, Acme\n"
    assert rendered.html == "<p>Dear Ann of Globex</p>"


def test_a_compiled_template_renders_each_recipient_with_their_values() -> None:
    compiled = letter_compile(
        subject="Hi {{ contact.first_name }}",
        text="",
        html="",
        roots=MERGE_FIELDS,
        fields=MERGE_FIELDS,
    )
    bob = {**CONTEXT, "contact": {**CONTEXT["contact"], "first_name": "Bob"}}
    assert compiled.render(CONTEXT).subject == "Hi Ann"
    assert compiled.render(bob).subject == "Hi Bob"


def test_errors_name_the_part_with_the_callers_prefix() -> None:
    with pytest.raises(TemplateError) as caught:
        letter_compile(
            subject="Hi",
            text="{{ order.number }}",
            html="",
            roots=MERGE_FIELDS,
            field_prefix="template.",
        )
    assert caught.value.field == "template.text"
