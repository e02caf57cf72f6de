"""Template context for every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from postroom.outbox.routing import is_sandboxed


def sandbox(request: HttpRequest) -> dict[str, Any]:
    # A callable: templates call it only where they ask, so pages that don't pay nothing.
    return {"postroom_sandboxed": is_sandboxed}
