"""The audit log: who changed what, when. Secret values never enter it.

Every area records its changes with `audit_record`. By convention `changes` maps a field's
label to {"from": old, "to": new} for plain values, and to {"changed": True, "secret": "set"
| "replaced" | "cleared"} for secrets, whose values are never passed here at all.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from postroom.audit.models import AuditEntry

logger = logging.getLogger(__name__)

SYSTEM_ACTOR_NAME = "system"


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
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
        actor_id=user.pk if user is not None else None,
        actor_name=actor_name[:150],
        action=action,
        subject=subject[:200],
        changes=changes,
    )
    logger.info("audit: %s %s %s (%s)", actor_name, action, subject, ", ".join(changes))
    return entry
