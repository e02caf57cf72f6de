"""Template context for every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from postroom.inbox.models import CapturedMessage
from postroom.outbox.routing import is_sandboxed
from postroom.outbox.selectors import server_pause_list

# The administration's sections: (name, URL name, path prefix). The main menu has one entry
# for them; their pages show them as a second row (web/_admin_nav.html).
ADMIN_SECTIONS = (
    ("Company", "company_smtp", "/company/"),
    ("Users", "user_list", "/users/"),
    ("API keys", "api_key_list", "/api-keys/"),
    ("SMTP credentials", "smtp_credential_list", "/smtp-credentials/"),
    ("Webhooks", "webhook_list", "/webhooks/"),
    ("Audit log", "audit_log", "/audit/"),
)


def administration(request: HttpRequest) -> dict[str, Any]:
    """Which administration section the page belongs to ("" for none), for administrators."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_administrator", False):
        return {"postroom_admin_section": ""}
    path = request.path
    section = next((prefix for _, _, prefix in ADMIN_SECTIONS if path.startswith(prefix)), "")
    if path == "/administration/":
        section = path
    return {"postroom_admin_section": section, "postroom_admin_sections": ADMIN_SECTIONS}


def sandbox(request: HttpRequest) -> dict[str, Any]:
    # Callables: templates call them only where they ask, so pages that don't pay nothing.
    return {
        "postroom_sandboxed": is_sandboxed,
        "postroom_capture_in_menu": _capture_in_menu,
        # Read at most once a page, however many status badges ask.
        "postroom_pauses": SimpleLazyObject(server_pause_list),
    }


def _capture_in_menu() -> bool:
    """The Sandbox capture is in the menu while mail is captured, or while it holds mail."""
    return is_sandboxed() or CapturedMessage.objects.exists()
