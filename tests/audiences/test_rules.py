"""A segment's rules as data: the fixed vocabulary is checked before anything is stored or
queried, and every refusal names the condition and what to write instead."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.audiences.rules import MAX_DAYS, MAX_RULES, Rule, rules_clean, rules_text
from postroom.core.errors import ValidationError


def test_the_example_of_the_issue_is_three_conditions() -> None:
    rules = rules_clean(
        [
            {"field": "tag", "op": "has", "value": "Customer"},
            {"field": "consent", "op": "is_true"},
            {"field": "emailed", "op": "not_within_days", "value": "30"},
        ]
    )
    assert rules == [
        Rule("tag", "has", "customer"),  # tags are stored in lower case
        Rule("consent", "is_true"),
        Rule("emailed", "not_within_days", 30),
    ]
    assert rules_text(rules, match="all") == (
        "tag is “customer” and consent to marketing is given and emailed not in the last 30 days"
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("tag = customer", "must be a list"),
        ([], "at least one condition"),
        ([["tag", "has", "x"]], "Condition 1: write it as"),
        ([{"field": "salary", "op": "is", "value": "1"}], "choose a field"),
        ([{"field": "tag", "op": "contains", "value": "x"}], "choose an operator: has, has_not"),
        ([{"field": "email", "op": "is"}], "enter a value"),
        ([{"field": "email", "op": "is", "value": "  "}], "enter a value"),
        ([{"field": "email", "op": "is", "value": 5}], "enter a value"),
        ([{"field": "consent", "op": "is_true", "value": "yes"}], "takes no value"),
        ([{"field": "emailed", "op": "within_days", "value": "soon"}], "number of days"),
        ([{"field": "emailed", "op": "within_days", "value": 0}], "from 1 to"),
        ([{"field": "emailed", "op": "within_days", "value": MAX_DAYS + 1}], "from 1 to"),
        ([{"field": "emailed", "op": "within_days", "value": True}], "number of days"),
        ([{"field": "first_name", "op": "is", "value": "a\nb"}], "control character"),
        ([{"field": "first_name", "op": "is", "value": "x" * 321}], "at most 320"),
        ([{"field": "tag", "op": "has", "value": "x", "sql": "1=1"}], "unknown key 'sql'"),
    ],
)
def test_a_rule_outside_the_vocabulary_is_refused(raw: Any, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as caught:
        rules_clean(raw)
    assert caught.value.field == "rules"


def test_the_second_bad_condition_is_named_as_the_second() -> None:
    with pytest.raises(ValidationError, match="^Condition 2: "):
        rules_clean([{"field": "consent", "op": "is_true"}, {"field": "tag", "op": "is"}])


def test_too_many_conditions_are_refused() -> None:
    rule = {"field": "consent", "op": "is_true"}
    assert len(rules_clean([rule] * MAX_RULES)) == MAX_RULES
    with pytest.raises(ValidationError, match=f"at most {MAX_RULES} conditions"):
        rules_clean([rule] * (MAX_RULES + 1))


def test_any_joins_the_words_with_or() -> None:
    rules = [Rule("company", "is_empty"), Rule("email", "ends_with", "@acme.example")]
    assert rules_text(rules, match="any") == (
        "company is empty or email address ends with “@acme.example”"
    )
