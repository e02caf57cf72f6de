from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from postroom.company.selectors import company_get
from postroom.oauth.models import COMPANY_OWNER, user_owner
from postroom.oauth.selectors import sign_ins_in_trouble
from postroom.outbox.selectors import DayCount, outbox_overview

# The chart's drawing area, in SVG user units (the SVG scales to the card's width).
CHART_BAR_STEP = 50
CHART_BAR_WIDTH = 36
CHART_BASELINE = 120
CHART_HEIGHT = 110


@dataclass(frozen=True)
class Bar:
    x: int
    sent_y: int
    sent_height: int
    failed_y: int
    failed_height: int
    label: str
    title: str


def chart_bars(days: list[DayCount], busiest: int) -> list[Bar]:
    """Stacked bars (delivered below, failed on top) scaled to the busiest day."""
    bars = []
    for index, day in enumerate(days):
        sent = round(CHART_HEIGHT * day.sent / busiest)
        failed = round(CHART_HEIGHT * day.failed / busiest)
        bars.append(
            Bar(
                x=index * CHART_BAR_STEP + (CHART_BAR_STEP - CHART_BAR_WIDTH) // 2,
                sent_y=CHART_BASELINE - sent,
                sent_height=sent,
                failed_y=CHART_BASELINE - sent - failed,
                failed_height=failed,
                label=day.day.strftime("%d"),
                title=f"{day.day:%a %d %b}: {day.sent} delivered, {day.failed} failed",
            )
        )
    return bars


def dashboard(request: HttpRequest) -> HttpResponse:
    overview = outbox_overview(user=request.user)
    owners = [user_owner(request.user.pk)] if request.user.pk else []
    if getattr(request.user, "is_administrator", False):
        owners.append(COMPANY_OWNER)
    return render(
        request,
        "web/dashboard.html",
        {
            "company": company_get(),
            "oauth_troubles": sign_ins_in_trouble(owners=owners),
            "overview": overview,
            "bars": chart_bars(overview.days, overview.busiest_day),
            "bar_width": CHART_BAR_WIDTH,
            "chart_width": CHART_BAR_STEP * len(overview.days),
        },
    )


urlpatterns = [path("", dashboard, name="dashboard")]
