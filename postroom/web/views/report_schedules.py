"""Reports → a report's schedules: set up, change, pause, resume, Run now, and the history."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from postroom.accounts.models import User
from postroom.core.errors import NotFoundError, PostroomError
from postroom.reports import schedules, selectors
from postroom.reports.models import Report, Schedule
from postroom.reports.timing import schedule_describe
from postroom.web.forms.reports import ScheduleForm, schedule_defaults, schedule_initial
from postroom.web.forms.users import add_service_error

RUNS_PAGE_SIZE = 50


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _report(request: HttpRequest, pk: int) -> Report:
    try:
        return selectors.report_get(user=request.user, pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _schedule(request: HttpRequest, pk: int) -> Schedule:
    try:
        return selectors.schedule_get(user=request.user, pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def describe(schedule: Schedule) -> str:
    return schedule_describe(
        frequency=schedule.frequency,
        cron=schedule.cron,
        time_of_day=schedule.time_of_day,
        weekday=schedule.weekday,
        month_day=schedule.month_day,
        time_zone=schedule.time_zone,
    )


def schedule_form(
    request: HttpRequest, report_pk: int | None = None, pk: int | None = None
) -> HttpResponse:
    schedule = _schedule(request, pk) if pk is not None else None
    report = schedule.report if schedule else _report(request, report_pk or 0)
    if schedule and not selectors.schedule_can_change(user=request.user, schedule=schedule):
        raise PermissionDenied(
            "Only whoever set up this schedule, or an administrator, may change it."
        )
    initial = (
        schedule_initial(schedule)
        if schedule
        else schedule_defaults(user_time_zone=settings.TIME_ZONE)
    )
    form = ScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = schedules.schedule_save(
                actor=_actor(request), report=report, values=form.to_input(), schedule=schedule
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"The schedule is saved: {describe(saved)}.")
            return redirect("report_schedule_detail", pk=saved.pk)
    return render(
        request,
        "web/reports/schedule_form.html",
        {"form": form, "report": report, "schedule": schedule},
    )


def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule(request, pk)
    runs = selectors.run_list(user=request.user, schedule=schedule)
    page = Paginator(runs, RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/reports/schedule_detail.html",
        {
            "schedule": schedule,
            "report": schedule.report,
            "describe": describe(schedule),
            "page": page,
            "can_change": selectors.schedule_can_change(user=request.user, schedule=schedule),
            "recipient_users": schedule.recipient_users.all(),
            "recipient_contacts": schedule.recipient_contacts.all(),
            "has_unfinished": any(run.status in ("queued", "running") for run in page),
        },
    )


def schedule_history(request: HttpRequest, pk: int) -> HttpResponse:
    """The history table alone, which the page refreshes while a run is unfinished."""
    schedule = _schedule(request, pk)
    runs = selectors.run_list(user=request.user, schedule=schedule)
    page = Paginator(runs, RUNS_PAGE_SIZE).get_page(1)
    return render(
        request,
        "web/reports/_runs.html",
        {
            "schedule": schedule,
            "page": page,
            "has_unfinished": any(run.status in ("queued", "running") for run in page),
        },
    )


@require_POST
def schedule_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    schedule = _schedule(request, pk)
    actor = _actor(request)
    try:
        if action == "run":
            run = schedules.schedule_run_now(actor=actor, schedule=schedule)
            messages.success(
                request, f"Run {run.pk} is queued: the worker runs it and mails it in a moment."
            )
        elif action == "pause":
            schedules.schedule_pause(actor=actor, schedule=schedule)
            messages.success(request, "The schedule is paused: it runs only with Run now.")
        elif action == "resume":
            schedules.schedule_resume(actor=actor, schedule=schedule)
            messages.success(request, "The schedule is running again from its next time.")
        else:
            raise Http404("No such action.")
    except PostroomError as error:
        messages.error(request, error.message)
    return redirect("report_schedule_detail", pk=schedule.pk)


def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule(request, pk)
    report = schedule.report
    error = ""
    if request.method == "POST":
        try:
            schedules.schedule_delete(actor=_actor(request), schedule=schedule)
        except PostroomError as problem:
            error = problem.message
        else:
            messages.success(request, "The schedule and its history are deleted.")
            return redirect("report_detail", pk=report.pk)
    return render(
        request,
        "web/reports/confirm_delete.html",
        {
            "what": f"this schedule of {report.name} and its run history",
            "error": error,
            "back_url": reverse("report_schedule_detail", args=[schedule.pk]),
        },
    )


urlpatterns = [
    path("<int:report_pk>/schedules/new/", schedule_form, name="report_schedule_create"),
    path("schedules/<int:pk>/", schedule_detail, name="report_schedule_detail"),
    path("schedules/<int:pk>/history/", schedule_history, name="report_schedule_history"),
    path("schedules/<int:pk>/edit/", schedule_form, name="report_schedule_edit"),
    path("schedules/<int:pk>/delete/", schedule_delete, name="report_schedule_delete"),
    path("schedules/<int:pk>/<str:action>/", schedule_action, name="report_schedule_action"),
]
