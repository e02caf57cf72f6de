"""Template context for every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from postroom.inbox.models import CapturedMessage
from postroom.outbox.routing import is_sandboxed
from postroom.outbox.selectors import server_pause_list


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
