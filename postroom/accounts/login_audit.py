"""Failed, locked and refused logins in the audit log.

Django sends `user_login_failed` for every login it refuses: a wrong password, an unknown
login name, and (through django-axes' backend) a login refused because of a lock. The
receiver here runs after axes' own (postroom.accounts.apps imports axes' first), so axes has
already counted the failure and marked the request: `axes_locked_out` with no count means
axes refused it before checking the password; with a count, this failure reached the limit.

Only the login name and the client address are recorded. The password tried never is: it is
not read here at all (Django has already replaced it with stars in `credentials`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from postroom.accounts.client_address import client_address
from postroom.accounts.lockouts import lockout_find
from postroom.accounts.models import User
from postroom.audit.services import audit_record


def _refused_by_lock(request: HttpRequest) -> bool:
    is_locked = bool(getattr(request, "axes_locked_out", False))
    return is_locked and getattr(request, "axes_failures_since_start", None) is None


def _has_just_locked(request: HttpRequest) -> bool:
    return bool(getattr(request, "axes_locked_out", False)) and not _refused_by_lock(request)


def _subject(username: str | None) -> str:
    if not username:
        return "unknown login (none given)"
    if User.objects.filter(username=username).exists():
        return f"user {username}"
    # Guesses at names that are not users show who is being looked for.
    return f"unknown login {username}"


def _lock_changes(*, username: str | None, address: str | None) -> dict[str, Any]:
    locks = lockout_find(username=username, ip_address=address)
    if not locks:
        return {}
    return {
        "Locked": ", ".join(lock.described for lock in locks),
        "Until": locks[0].ends_at.isoformat(timespec="seconds"),
    }


def login_failure_record(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """Receive `user_login_failed`: audit the failure, and the lock it started, if any."""
    if request is None:
        return
    username = credentials.get("username")
    address = client_address(request)
    subject = _subject(username)
    changes: dict[str, Any] = {"Client address": address}
    if _refused_by_lock(request):
        audit_record(actor=None, action="login.refused", subject=subject, changes=changes)
        return
    audit_record(actor=None, action="login.failed", subject=subject, changes=changes)
    if _has_just_locked(request):
        locked = {**changes, **_lock_changes(username=username, address=address)}
        audit_record(actor=None, action="login.locked", subject=subject, changes=locked)
