"""A segment's rules: a fixed vocabulary of fields and operators, checked, then turned into
one Django `Q` over contacts. Never SQL: every value reaches the database as a parameter.

A rule is `{"field": "tag", "op": "has", "value": "customer"}`. "tag = customer and
consented and not emailed in 30 days" is, with the segment's match "all":

    [{"field": "tag", "op": "has", "value": "customer"},
     {"field": "consent", "op": "is_true"},
     {"field": "emailed", "op": "not_within_days", "value": 30}]

`rules_clean` checks untrusted input (a form, the API) and returns `Rule`s; `rules_q` builds
the filter. Each condition is a column test or an `Exists` subquery, never a join that could
repeat a contact, so a filtered queryset holds each contact once.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Upper

from postroom.contacts import fields as contact_fields
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.outbox.models import Recipient, RecipientStatus

# More conditions than fit on a screen are no longer read, let alone checked, by a person.
MAX_RULES = 20
# The longest text a field holds: a contact's address (RFC 3696 §3 errata, 320).
MAX_VALUE_LENGTH = 320
# Ten years of days: the outbox keeps no older history to look at, and a larger number is
# a typo.
MAX_DAYS = 3650
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class Kind(enum.Enum):
    TEXT = "text"  # a contact's text field: is, contains, starts with, empty …
    TAG = "tag"  # has the tag, or not
    FLAG = "flag"  # yes or no
    AGE = "age"  # a date on the contact, in days from now
    ACTIVITY = "activity"  # mail sent to the contact's address


@dataclass(frozen=True)
class FieldSpec:
    label: str
    kind: Kind
    column: str = ""  # the contact's column (a lookup path) the rule tests


@dataclass(frozen=True)
class OperatorSpec:
    label: str  # what the operator says after the field: "tag" + "is"
    needs: type[str] | type[int] | None  # the type of the value, None for no value


FIELDS: dict[str, FieldSpec] = {
    "email": FieldSpec("Email address", Kind.TEXT, "email"),
    "first_name": FieldSpec("First name", Kind.TEXT, "first_name"),
    "last_name": FieldSpec("Last name", Kind.TEXT, "last_name"),
    "phone": FieldSpec("Phone", Kind.TEXT, "phone"),
    "company": FieldSpec("Company", Kind.TEXT, "organization__name"),
    "tag": FieldSpec("Tag", Kind.TAG),
    "consent": FieldSpec("Consent to marketing", Kind.FLAG, "marketing_consent"),
    "created": FieldSpec("Added to Postroom", Kind.AGE, "created_at"),
    "emailed": FieldSpec("Emailed", Kind.ACTIVITY),
}

OPERATORS: dict[Kind, dict[str, OperatorSpec]] = {
    Kind.TEXT: {
        "is": OperatorSpec("is", str),
        "is_not": OperatorSpec("is not", str),
        "contains": OperatorSpec("contains", str),
        "not_contains": OperatorSpec("does not contain", str),
        "starts_with": OperatorSpec("starts with", str),
        "ends_with": OperatorSpec("ends with", str),
        "is_empty": OperatorSpec("is empty", None),
        "is_not_empty": OperatorSpec("is not empty", None),
    },
    Kind.TAG: {
        "has": OperatorSpec("is", str),
        "has_not": OperatorSpec("is not", str),
    },
    Kind.FLAG: {
        "is_true": OperatorSpec("is given", None),
        "is_false": OperatorSpec("is not given", None),
    },
    Kind.AGE: {
        "within_days": OperatorSpec("in the last … days", int),
        "before_days": OperatorSpec("more than … days ago", int),
    },
    Kind.ACTIVITY: {
        "within_days": OperatorSpec("in the last … days", int),
        "not_within_days": OperatorSpec("not in the last … days", int),
        "ever": OperatorSpec("ever", None),
        "never": OperatorSpec("never", None),
    },
}


@dataclass(frozen=True)
class Rule:
    field: str
    op: str
    value: str | int | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.value is not None:
            data["value"] = self.value
        return data


def operators_for(field: str) -> dict[str, OperatorSpec]:
    spec = FIELDS.get(field)
    return OPERATORS[spec.kind] if spec else {}


# Checking.


def rules_clean(raw: Any) -> list[Rule]:
    """Check a rule list from outside (a form, the API, a stored segment). Raise
    ValidationError naming the condition ("Condition 2: …") and what to do."""
    if not isinstance(raw, list):
        raise ValidationError("The conditions must be a list.", field="rules")
    if not raw:
        raise ValidationError("Add at least one condition.", field="rules")
    if len(raw) > MAX_RULES:
        raise ValidationError(
            f"A segment has at most {MAX_RULES} conditions; this one has {len(raw)}. "
            "Split it, or use a tag or a list for part of it.",
            field="rules",
        )
    return [_rule_clean(item, number=number) for number, item in enumerate(raw, 1)]


def _rule_clean(item: Any, *, number: int) -> Rule:
    def bad(text: str) -> ValidationError:
        return ValidationError(f"Condition {number}: {text}", field="rules")

    if not isinstance(item, Mapping):
        raise bad('write it as {"field": …, "op": …, "value": …}.')
    unknown = set(item) - {"field", "op", "value"}
    if unknown:
        raise bad(f"unknown key {sorted(unknown)[0]!r}; use field, op and value.")
    field, op = item.get("field"), item.get("op")
    if not isinstance(field, str) or field not in FIELDS:
        raise bad(f"choose a field: {', '.join(FIELDS)}.")
    operators = operators_for(field)
    if not isinstance(op, str) or op not in operators:
        raise bad(f"for {FIELDS[field].label.lower()}, choose an operator: {', '.join(operators)}.")
    needs = operators[op].needs
    value = item.get("value")
    if needs is None:
        if value not in (None, ""):
            raise bad(f"“{operators[op].label}” takes no value.")
        return Rule(field, op)
    if needs is int:
        return Rule(field, op, _days_clean(value, bad=bad))
    return Rule(field, op, _text_clean(field, value, bad=bad))


def _days_clean(value: Any, *, bad: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("enter a number of days.")
    if not 1 <= value <= MAX_DAYS:
        raise bad(f"enter a number of days from 1 to {MAX_DAYS}.")
    return value


def _text_clean(field: str, value: Any, *, bad: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad("enter a value.")
    text = value.strip()
    if _CONTROL.search(text):
        raise bad("the value contains a line break or another control character.")
    if len(text) > MAX_VALUE_LENGTH:
        raise bad(f"the value is {len(text)} characters long; use at most {MAX_VALUE_LENGTH}.")
    if field == "tag":
        # Tags are stored in lower case with their blanks collapsed: compare the same way.
        return contact_fields.tag_name_clean(text, field="rules")
    return text


# In words, for pages and the audit log.


def rule_text(rule: Rule) -> str:
    """'tag is customer', 'emailed not in the last 30 days', 'company is empty'."""
    field = FIELDS[rule.field]
    label = operators_for(rule.field)[rule.op].label
    if isinstance(rule.value, int):
        return f"{field.label.lower()} {label.replace('…', str(rule.value))}"
    if rule.value is None:
        return f"{field.label.lower()} {label}"
    return f"{field.label.lower()} {label} “{rule.value}”"


def rules_text(rules: Sequence[Rule], *, match: str) -> str:
    joiner = " or " if match == "any" else " and "
    return joiner.join(rule_text(rule) for rule in rules)


# The query.


def rules_q(rules: Iterable[Rule], *, match: str, now: dt.datetime) -> Q:
    """The contacts that meet all (match "all") or any (match "any") of `rules`, with the
    time windows counted back from `now`. No rules match no contact."""
    parts = [_rule_q(rule, now=now) for rule in rules]
    if not parts:
        return Q(pk__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined = combined | part if match == "any" else combined & part
    return combined


def _rule_q(rule: Rule, *, now: dt.datetime) -> Q:
    spec = FIELDS[rule.field]
    if spec.kind is Kind.TEXT:
        return _text_q(spec.column, rule.op, str(rule.value or ""))
    if spec.kind is Kind.TAG:
        tagged = Q(Exists(_tagged(str(rule.value))))
        return tagged if rule.op == "has" else ~tagged
    if spec.kind is Kind.FLAG:
        return Q(**{spec.column: rule.op == "is_true"})
    if spec.kind is Kind.AGE:
        since = now - dt.timedelta(days=int(rule.value or 0))
        lookup = "gte" if rule.op == "within_days" else "lt"
        return Q(**{f"{spec.column}__{lookup}": since})
    return _activity_q(rule, now=now)


_TEXT_LOOKUPS = {
    "is": "iexact",
    "is_not": "iexact",
    "contains": "icontains",
    "not_contains": "icontains",
    "starts_with": "istartswith",
    "ends_with": "iendswith",
}


def _text_q(column: str, op: str, value: str) -> Q:
    if op in ("is_empty", "is_not_empty"):
        # A contact without a company has no name to compare: NULL counts as empty.
        empty = Q(**{column: ""})
        if "__" in column:
            empty |= Q(**{f"{column.split('__')[0]}__isnull": True})
        return empty if op == "is_empty" else ~empty
    test = Q(**{f"{column}__{_TEXT_LOOKUPS[op]}": value})
    return ~test if op in ("is_not", "not_contains") else test


def _tagged(name: str) -> Any:
    return Contact.tags.through.objects.filter(contact_id=OuterRef("pk"), tag__name=name)


def _activity_q(rule: Rule, *, now: dt.datetime) -> Q:
    """Mail sent to the contact's address (any case, any message, To, Cc or Bcc): a
    recipient the server accepted. Captured (sandbox) mail reached nobody and does not count.

    The address is compared as UPPER(address), the expression the outbox indexes for the
    contact's history (outbox_recipient_address_ci), so each contact costs one index seek.
    """
    sent = Recipient.objects.annotate(address_upper=Upper("address")).filter(
        address_upper=Upper(OuterRef("email")), status=RecipientStatus.SENT
    )
    if rule.op in ("within_days", "not_within_days"):
        sent = sent.filter(sent_at__gte=now - dt.timedelta(days=int(rule.value or 0)))
    emailed = Q(Exists(sent))
    return emailed if rule.op in ("within_days", "ever") else ~emailed
