"""Read the audit log, and say its entries in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from postroom.audit.models import AuditEntry


def audit_entry_list(*, action: str = "") -> QuerySet[AuditEntry]:
    """Entries newest first, optionally only one action."""
    entries = AuditEntry.objects.order_by("-at", "-id")
    if action:
        entries = entries.filter(action=action)
    return entries


def audit_action_list() -> list[str]:
    return sorted(set(AuditEntry.objects.values_list("action", flat=True)))


@dataclass(frozen=True)
class ChangeLine:
    label: str
    text: str


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if value is True:
        return "Y"
    if value is False:
        return "N"
    return str(value)


def audit_change_lines(changes: Any) -> list[ChangeLine]:
    """Turn an entry's `changes` into readable lines: "Port: 25 → 587"."""
    if not isinstance(changes, dict):
        return [ChangeLine(label="", text=str(changes))] if changes else []
    lines = []
    for label, change in changes.items():
        if isinstance(change, dict) and "secret" in change:
            text = f"{change['secret']} (the value is never recorded)"
        elif isinstance(change, dict) and ("from" in change or "to" in change):
            text = f"{_shown(change.get('from'))} → {_shown(change.get('to'))}"
        elif isinstance(change, dict) and change.get("changed") is True:
            text = "changed"
        else:
            text = _shown(change)
        lines.append(ChangeLine(label=str(label), text=text))
    return lines
