"""The audit log: who changed what, when. Secret values never enter it.

Every area records its changes with `audit_record`. By convention `changes` maps a field's
label to {"from": old, "to": new} for plain values, and to {"changed": True, "secret": "set"
| "replaced" | "cleared"} for secrets, whose values are never passed here at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from postroom.accounts.models import User
from postroom.company.models import AuditEntry

logger = logging.getLogger(__name__)

SYSTEM_ACTOR_NAME = "system"


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    subject: str,
    changes: dict[str, Any],
) -> AuditEntry:
    """Record one change. Call it inside the transaction that makes the change, so that the
    entry exists if and only if the change does. `actor` None means Postroom itself (a
    command, a migration)."""
    user = actor if actor is not None and actor.is_authenticated else None
    # The login name is copied so the log still reads right after the user is deleted.
    actor_name = user.get_username() if user is not None else SYSTEM_ACTOR_NAME
    entry = AuditEntry.objects.create(
        actor=user,
        actor_name=actor_name[:150],
        action=action,
        subject=subject[:200],
        changes=changes,
    )
    logger.info("audit: %s %s %s (%s)", actor_name, action, subject, ", ".join(changes))
    return entry


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
