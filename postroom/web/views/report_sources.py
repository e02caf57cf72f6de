"""Reports → Data sources (administrators): connect external databases, test them."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from postroom.accounts.models import User
from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PostroomError
from postroom.reports import selectors, services
from postroom.reports.models import DataSource
from postroom.reports.sources import source_test
from postroom.web.forms.reports import SourceForm, source_initial
from postroom.web.forms.users import add_service_error


def _source(pk: int) -> DataSource:
    try:
        return selectors.data_source_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@administrator_required
def source_list(request: HttpRequest) -> HttpResponse:
    sources = selectors.data_source_list()
    return render(request, "web/reports/source_list.html", {"sources": sources})


@administrator_required
def source_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    source = _source(pk) if pk is not None else None
    initial = source_initial(source) if source else {}
    form = SourceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.source_save(
                actor=_actor(request), values=form.to_input(), source=source
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            check = source_test(saved)
            level = messages.success if check.is_ok else messages.warning
            level(request, f"{saved.name} is saved. Test connection: {check.message}")
            return redirect("report_source_list")
    return render(request, "web/reports/source_form.html", {"form": form, "source": source})


@administrator_required
@require_POST
def source_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Test connection: connect and read in a read-only transaction, and say what happened."""
    source = _source(pk)
    check = source_test(source)
    context = {"source": source, "check": check}
    if request.headers.get("HX-Request"):
        return render(request, "web/reports/_source_check.html", context)
    level = messages.success if check.is_ok else messages.error
    level(request, f"{source.name}: {check.message}")
    return redirect("report_source_list")


@administrator_required
def source_delete(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    error = ""
    if request.method == "POST":
        try:
            services.source_delete(actor=_actor(request), source=source)
        except PostroomError as problem:
            error = problem.message
        else:
            messages.success(request, f"The data source {source.name} is removed.")
            return redirect("report_source_list")
    return render(
        request,
        "web/reports/confirm_delete.html",
        {
            "what": f"the data source {source.name}",
            "error": error,
            "back_url": reverse("report_source_list"),
        },
    )


urlpatterns = [
    path("sources/", source_list, name="report_source_list"),
    path("sources/new/", source_form, name="report_source_create"),
    path("sources/<int:pk>/edit/", source_form, name="report_source_edit"),
    path("sources/<int:pk>/test/", source_check, name="report_source_test"),
    path("sources/<int:pk>/delete/", source_delete, name="report_source_delete"),
]
