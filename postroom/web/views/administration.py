"""The administration hub: the one menu entry for company, users, keys, webhooks and audit."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from postroom.accounts.permissions import administrator_required


@require_GET
@administrator_required
def administration(request: HttpRequest) -> HttpResponse:
    return render(request, "web/administration.html")


urlpatterns = [path("", administration, name="administration")]
