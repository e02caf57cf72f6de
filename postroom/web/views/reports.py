"""Reports pages: the reports a user was given, preview with its chart, and (administrators)
writing reports; the data sources and schedules are in report_sources and report_schedules.
The download of a file too large to attach is here too: a signed link, without a login."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path, reverse
from django.utils import timezone

from postroom.accounts.models import User
from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PostroomError
from postroom.reports import selectors, services
from postroom.reports.builtins import BUILTINS
from postroom.reports.charts import Chart, chart_make, chart_marks
from postroom.reports.execution import report_result
from postroom.reports.links import DownloadLinkError, download_file
from postroom.reports.models import Report
from postroom.reports.table import truncation_note
from postroom.web.forms.reports import ReportForm, report_initial
from postroom.web.forms.users import add_service_error
from postroom.web.views.report_schedules import describe

# The preview shows the first rows and waits for them at most this long: it runs while a
# person waits for the page, not in the worker.
PREVIEW_ROWS = 50
PREVIEW_TIMEOUT_SECONDS = 20
# The chart's drawing area in SVG user units (it scales to the card's width).
CHART_WIDTH, CHART_HEIGHT = 720, 160


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _report(request: HttpRequest, pk: int) -> Report:
    try:
        return selectors.report_get(user=request.user, pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def report_list(request: HttpRequest) -> HttpResponse:
    reports = selectors.report_visible_list(user=request.user).prefetch_related("schedules")
    return render(
        request,
        "web/reports/list.html",
        {
            "reports": reports,
            "is_admin": selectors.is_report_admin(request.user),
            "builtins": BUILTINS,
        },
    )


def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    report_schedules = [
        (schedule, describe(schedule))
        for schedule in report.schedules.select_related("created_by").order_by("id")
    ]
    return render(
        request,
        "web/reports/detail.html",
        {
            "report": report,
            "schedules": report_schedules,
            "is_admin": selectors.is_report_admin(request.user),
            "builtin": BUILTINS.get(report.builtin),
        },
    )


@administrator_required
def report_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    report = _report(request, pk) if pk is not None else None
    initial: dict[str, Any] = report_initial(report) if report else {"format": "csv"}
    builtin = request.GET.get("builtin", "")
    if report is None and builtin in BUILTINS:
        initial.update(
            source="builtin",
            builtin=builtin,
            name=BUILTINS[builtin].name,
            description=BUILTINS[builtin].description,
            parameters="period period last 7 days",
            chart="bar" if BUILTINS[builtin].chart_values else "",
            chart_label_column=BUILTINS[builtin].chart_label,
            chart_value_columns=", ".join(BUILTINS[builtin].chart_values),
        )
    form = ReportForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.report_save(
                actor=_actor(request), values=form.to_input(), report=report
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"The report {saved.name} is saved. Preview it below.")
            return redirect("report_detail", pk=saved.pk)
    return render(request, "web/reports/form.html", {"form": form, "report": report})


@administrator_required
def report_delete(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    if request.method == "POST":
        services.report_delete(actor=_actor(request), report=report)
        messages.success(request, f"The report {report.name} and its schedules are deleted.")
        return redirect("report_list")
    return render(
        request,
        "web/reports/confirm_delete.html",
        {
            "what": f"the report {report.name}, its schedules and their history",
            "error": "",
            "back_url": reverse("report_detail", args=[report.pk]),
        },
    )


@dataclass(frozen=True)
class SvgSeries:
    name: str
    colour: str
    points: str  # a line's "x,y x,y ..."


def _svg(chart: Chart) -> dict[str, Any]:
    marks = chart_marks(chart, width=CHART_WIDTH, height=CHART_HEIGHT)
    series = [
        SvgSeries(
            s.name,
            s.colour,
            " ".join(f"{m.x:.1f},{m.y:.1f}" for m in marks if m.colour == s.colour),
        )
        for s in chart.series
    ]
    step = CHART_WIDTH / len(chart.labels)
    labels = [(step * i + step / 2, label[:10]) for i, label in enumerate(chart.labels)]
    return {
        "marks": marks,
        "series": series,
        "labels": labels if len(labels) <= 31 else [],
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "kind": chart.kind,
        "is_cut": chart.is_cut,
    }


def report_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The first rows and the chart, read now in the server's time zone."""
    report = _report(request, pk)
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    context: dict[str, Any] = {"report": report}
    try:
        result = report_result(
            report,
            now=timezone.now(),
            tz=tz,
            max_rows=PREVIEW_ROWS,
            timeout_seconds=min(PREVIEW_TIMEOUT_SECONDS, settings.POSTROOM_REPORT_TIMEOUT_SECONDS),
        )
        table = result.table
        context.update(
            table=table,
            parameters=result.resolved.shown,
            more=truncation_note(table) if table.is_truncated else "",
        )
        if report.chart and report.chart_label_column and report.chart_value_columns:
            chart = chart_make(
                table,
                kind=report.chart,
                label_column=report.chart_label_column,
                value_columns=list(report.chart_value_columns),
            )
            context["chart"] = _svg(chart) if chart.labels else None
    except PostroomError as error:
        context["error"] = error.message
    template = (
        "web/reports/_preview.html"
        if request.headers.get("HX-Request")
        else "web/reports/preview.html"
    )
    return render(request, template, context)


@login_not_required
def report_download(request: HttpRequest, token: str) -> HttpResponse:
    """A run's file, from the signed link in its email: no login, as with an attachment."""
    try:
        file = download_file(token)
    except DownloadLinkError as error:
        return render(
            request, "web/reports/link_invalid.html", {"message": error.message}, status=404
        )
    response = HttpResponse(bytes(file.data), content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.run.filename}"'
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


urlpatterns = [
    path("", report_list, name="report_list"),
    path("new/", report_form, name="report_create"),
    path("<int:pk>/", report_detail, name="report_detail"),
    path("<int:pk>/edit/", report_form, name="report_edit"),
    path("<int:pk>/delete/", report_delete, name="report_delete"),
    path("<int:pk>/preview/", report_preview, name="report_preview"),
    path("download/<str:token>/", report_download, name="report_download"),
    path("", include("postroom.web.views.report_sources")),
    path("", include("postroom.web.views.report_schedules")),
]
