"""Forms of the Audiences pages: lists, segments (with their rule rows) and suppression.

They check shape and show errors next to fields; the rules are the services' (postroom.
audiences.services, postroom.audiences.rules, postroom.outbox.suppression), which the API
applies too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import QueryDict

from postroom.audiences import rules as segment_rules
from postroom.audiences.models import SegmentMatch
from postroom.audiences.services import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from postroom.outbox.models import SuppressionReason
from postroom.outbox.suppression import NOTE_MAX_LENGTH

# Addresses pasted into "Add by address" at once: a page's worth; more is a CSV import.
MAX_PASTED_ADDRESSES = 1000


class ListForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX_LENGTH)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the list is for, for the next person who chooses an audience.",
    )


class MembersAddForm(forms.Form):
    addresses = forms.CharField(
        label="Add contacts by address",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="One address per line, or separated by commas. Addresses of no contact are "
        "listed afterwards: add them as contacts (or import a CSV file into the list).",
    )

    def clean_addresses(self) -> list[str]:
        text = self.cleaned_data["addresses"].replace(",", "\n").replace(";", "\n")
        addresses = [line.strip() for line in text.splitlines() if line.strip()]
        if len(addresses) > MAX_PASTED_ADDRESSES:
            raise forms.ValidationError(
                f"That is {len(addresses)} addresses; paste at most {MAX_PASTED_ADDRESSES}, or "
                "import a CSV file into the list."
            )
        return addresses


class SegmentForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX_LENGTH)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    match = forms.ChoiceField(
        label="Contacts who meet",
        choices=SegmentMatch.choices,
        initial=SegmentMatch.ALL,
        widget=forms.RadioSelect,
    )


@dataclass(frozen=True)
class RuleRow:
    """One condition row of the segment form, as typed."""

    index: int
    field: str
    op: str
    value: str

    @property
    def fields(self) -> list[tuple[str, str]]:
        return [(name, spec.label) for name, spec in segment_rules.FIELDS.items()]

    @property
    def operators(self) -> list[tuple[str, str]]:
        return [
            (name, spec.label) for name, spec in segment_rules.operators_for(self.field).items()
        ]

    @property
    def value_kind(self) -> str:
        """ "" (no value), "number" (days) or "text"."""
        spec = segment_rules.operators_for(self.field).get(self.op)
        if spec is None or spec.needs is None:
            return ""
        return "number" if spec.needs is int else "text"

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.value_kind:
            data["value"] = self.value
        return data


# A row starts as "tag is …": the most common first condition.
NEW_ROW = ("tag", "has", "")


def rule_rows_from_post(data: QueryDict) -> list[RuleRow]:
    """The rows of a posted segment form: rule-N-field, rule-N-op, rule-N-value, with the
    row asked for by "Add a condition" and without the one "Remove" named. An operator that
    does not belong to the chosen field becomes that field's first."""
    count = min(_int(data.get("rule-count"), 0), segment_rules.MAX_RULES + 1)
    action = data.get("action", "")
    rows: list[tuple[str, str, str]] = []
    for index in range(count):
        if action == f"remove-{index}":
            continue
        field = data.get(f"rule-{index}-field", "")
        if field not in segment_rules.FIELDS:
            field = NEW_ROW[0]
        op = data.get(f"rule-{index}-op", "")
        operators = segment_rules.operators_for(field)
        if op not in operators:
            op = next(iter(operators))
        rows.append((field, op, data.get(f"rule-{index}-value", "")[:500]))
    if action == "add" and len(rows) < segment_rules.MAX_RULES:
        rows.append(NEW_ROW)
    return [RuleRow(index, *row) for index, row in enumerate(rows)]


def rule_rows_from_rules(rules: list[dict[str, Any]]) -> list[RuleRow]:
    return [
        RuleRow(index, rule["field"], rule["op"], str(rule.get("value", "")))
        for index, rule in enumerate(rules)
    ] or [RuleRow(0, *NEW_ROW)]


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else default


class SuppressionAddForm(forms.Form):
    address = forms.CharField(
        label="Address",
        max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    reason = forms.ChoiceField(
        label="Reason", choices=SuppressionReason.choices, initial=SuppressionReason.MANUAL
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=NOTE_MAX_LENGTH,
        help_text="Why, for whoever wonders later (“asked by phone on 3 May”).",
    )


class SuppressionImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 text: one address per row, or a column named Address or Email; a "
        "Reason and a Note column are used when the file has them (an export has them).",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
    )
    reason = forms.ChoiceField(
        label="Reason",
        choices=SuppressionReason.choices,
        initial=SuppressionReason.UNSUBSCRIBED,
        help_text="For rows without a reason of their own.",
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=NOTE_MAX_LENGTH,
        help_text="For rows without a note of their own, such as where the list came from.",
    )


class SuppressionFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=320,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Address, note or source"}),
    )
    reason = forms.ChoiceField(
        label="Reason", required=False, choices=[("", "Any reason"), *SuppressionReason.choices]
    )

    def values(self) -> tuple[str, str]:
        if not self.is_valid():
            return "", ""
        return self.cleaned_data["q"], self.cleaned_data["reason"]
