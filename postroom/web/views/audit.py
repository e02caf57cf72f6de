"""The audit log page: every recorded change, newest first, for administrators."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from postroom.accounts.permissions import administrator_required
from postroom.audit.selectors import (
    audit_action_list,
    audit_action_sentence,
    audit_change_lines,
    audit_entry_list,
)

# A page of 50 rows reads comfortably and keeps the query and the HTML small.
ENTRIES_PER_PAGE = 50


@require_GET
@administrator_required
def audit_log(request: HttpRequest) -> HttpResponse:
    actions = audit_action_list()
    action = request.GET.get("action", "")
    if action not in dict(actions):
        action = ""
    page = Paginator(audit_entry_list(action=action), ENTRIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [
        (entry, audit_action_sentence(entry.action), audit_change_lines(entry.changes))
        for entry in page.object_list
    ]
    return render(
        request,
        "web/audit/log.html",
        {
            "page": page,
            "rows": rows,
            "actions": actions,
            "action": action,
            "action_sentence": audit_action_sentence(action),
        },
    )


urlpatterns = [path("", audit_log, name="audit_log")]
