"""Campaign pages: the list, create and edit a draft, a campaign's page (statistics, chart,
recipients, test send, Send, pause, resume, cancel), its preview, and the tracking setting.

Marketers and administrators use them; staff cannot send campaigns and do not see them
(postroom.accounts.permissions.marketer_required). The templates' pages and the recipients'
public pages (unsubscribe, open, click) are routed here too, from their own modules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import User
from postroom.accounts.permissions import administrator_required, marketer_required
from postroom.campaigns import selectors, services
from postroom.campaigns.campaign_templates import (
    contact_row,
    letter_preview,
    preview_contact,
    sample_row,
)
from postroom.campaigns.models import Campaign, CampaignStatus
from postroom.campaigns.monitor import campaign_refresh
from postroom.campaigns.sending import campaign_letter
from postroom.company.selectors import company_get
from postroom.core.errors import NotFoundError, PostroomError
from postroom.outbox.models import RecipientStatus
from postroom.web.forms.campaigns import CampaignForm, TestSendForm, campaign_initial
from postroom.web.forms.users import add_service_error
from postroom.web.views.mail_display import mail_body_context, mail_page

# The chart's drawing area, in SVG user units (as the dashboard's).
CHART_BASELINE = 120
CHART_HEIGHT = 110
CHART_BAR_STEP = 14
CHART_BAR_WIDTH = 10
CHART_MIN_BARS = 15
# The recipient statuses offered as filters, in the order people look for them.
RECIPIENT_FILTERS = (
    RecipientStatus.DEFERRED,
    RecipientStatus.FAILED,
    RecipientStatus.QUEUED,
    RecipientStatus.SENT,
    RecipientStatus.SUPPRESSED,
    RecipientStatus.CANCELLED,
)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _campaign_or_404(pk: int) -> Campaign:
    try:
        return selectors.campaign_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@require_GET
@marketer_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    campaigns = list(selectors.campaign_list(status=status)[:200])
    for campaign in campaigns:
        campaign_refresh(campaign)
    return render(
        request,
        "web/campaigns/list.html",
        {"campaigns": campaigns, "status": status, "statuses": CampaignStatus.choices},
    )


@require_http_methods(["GET", "POST"])
@marketer_required
def campaign_create(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(actor=_user(request), fields=form.fields_value())
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Campaign {campaign.name} was saved as a draft.")
            return redirect("campaign_detail", pk=campaign.pk)
    return render(request, "web/campaigns/form.html", {"form": form, "campaign": None})


@require_http_methods(["GET", "POST"])
@marketer_required
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    if not campaign.is_draft:
        messages.error(request, "Only a draft can be changed.")
        return redirect("campaign_detail", pk=pk)
    form = CampaignForm(request.POST or None, initial=campaign_initial(campaign))
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(
                actor=_user(request), campaign=campaign, fields=form.fields_value()
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("campaign_detail", pk=pk)
    return render(request, "web/campaigns/form.html", {"form": form, "campaign": campaign})


def chart_bars(buckets: list[selectors.SendBucket], unit: str) -> list[dict[str, Any]]:
    busiest = max((bucket.sent for bucket in buckets), default=0) or 1
    shown = {"minute": "%H:%M", "hour": "%d %b %H:00", "day": "%d %b"}[unit]
    bars = []
    for index, bucket in enumerate(buckets):
        height = round(CHART_HEIGHT * bucket.sent / busiest)
        bars.append(
            {
                "x": index * CHART_BAR_STEP + (CHART_BAR_STEP - CHART_BAR_WIDTH) // 2,
                "y": CHART_BASELINE - height,
                "height": height,
                "title": f"{bucket.at:{shown}}: {bucket.sent} delivered",
            }
        )
    return bars


def _detail_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    status = request.GET.get("recipients", "")
    following = _int_or_none(request.GET.get("after"))
    preceding = _int_or_none(request.GET.get("before"))
    page, rows = selectors.campaign_recipients_page(
        campaign, status=status, following=following, preceding=preceding
    )
    buckets, unit = selectors.campaign_sends_over_time(campaign)
    stats = selectors.campaign_stats(campaign)
    labels = dict(RecipientStatus.choices)
    return {
        "campaign": campaign,
        "stats": stats,
        "bars": chart_bars(buckets, unit),
        "chart_unit": unit,
        # At least a quarter of the bars' room: a campaign of a few minutes is a few bars.
        "chart_width": CHART_BAR_STEP * max(len(buckets), CHART_MIN_BARS),
        "bar_width": CHART_BAR_WIDTH,
        "page": page,
        "rows": rows,
        "recipient_status": status,
        "recipient_filters": [
            (value, labels[value], stats.by_status.get(value, 0)) for value in RECIPIENT_FILTERS
        ],
        "is_running": campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
        "test_form": TestSendForm(),
        "sees_messages": _user(request).is_administrator,
    }


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@require_GET
@marketer_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_refresh(_campaign_or_404(pk))
    context = _detail_context(request, campaign)
    template = "web/campaigns/detail.html"
    if request.headers.get("HX-Request") and request.GET.get("part") == "progress":
        template = "web/campaigns/_progress.html"
    return render(request, template, context)


def _act(request: HttpRequest, pk: int, action: Any, done: str, **kwargs: Any) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    try:
        action(actor=_user(request), campaign=campaign, **kwargs)
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("campaign_detail", pk=pk)


@require_POST
@marketer_required
def campaign_send(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.campaign_send,
        "Sent to the worker: it checks every recipient's message first (pre-flight), then "
        "writes them to the outbox.",
    )


@require_POST
@marketer_required
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.campaign_pause, "Paused: no further message leaves.")


@require_POST
@marketer_required
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.campaign_resume, "Resumed where it stopped.")


@require_POST
@marketer_required
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request, pk, services.campaign_cancel, "Cancelled: messages not yet sent never will be."
    )


@require_POST
@marketer_required
def campaign_delete(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    try:
        services.campaign_delete(actor=_user(request), campaign=campaign)
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("campaign_detail", pk=pk)
    messages.success(request, f"Draft {campaign.name} was deleted.")
    return redirect("campaign_list")


@require_POST
@marketer_required
def campaign_test(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    form = TestSendForm(request.POST)
    if form.is_valid():
        try:
            queued = services.campaign_test_send(
                actor=_user(request), campaign=campaign, addresses=form.addresses_value()
            )
        except PostroomError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Test sent to {len(queued)} address(es).")
    else:
        messages.error(request, " ".join(str(e) for e in form.errors.get("addresses", [])))
    return redirect("campaign_detail", pk=pk)


@require_GET
@marketer_required
def campaign_preview(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    contact, note = preview_contact(request.GET.get("contact", ""))
    context: dict[str, Any] = {"campaign": campaign, "contact": contact, "note": note}
    try:
        letter = campaign_letter(campaign, is_tracking=campaign.is_tracking)
        template = campaign.template
        assert template is not None  # campaign_letter refuses a campaign without one
        preview = letter_preview(
            letter,
            row=contact_row(contact) if contact else sample_row("jane.doe@example.com"),
            campaign_id=campaign.pk,
            text_written=template.text,
            html_written=template.html,
        )
    except PostroomError as error:
        context["error"] = error.message
    else:
        context |= {"preview": preview, **mail_body_context(preview.raw)}
    return mail_page(render(request, "web/campaigns/preview.html", context))


@require_http_methods(["GET", "POST"])
@administrator_required
def campaign_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        is_on = request.POST.get("tracking") == "on"
        services.campaign_tracking_set(actor=_user(request), is_on=is_on)
        messages.success(
            request,
            "Tracking is on for campaigns sent from now on."
            if is_on
            else "Tracking is off for campaigns sent from now on.",
        )
        return redirect("campaign_settings")
    return render(request, "web/campaigns/settings.html", {"company": company_get()})


urlpatterns = [
    path("campaigns/", campaign_list, name="campaign_list"),
    path("campaigns/new/", campaign_create, name="campaign_create"),
    path("campaigns/settings/", campaign_settings, name="campaign_settings"),
    path("campaigns/templates/", include("postroom.web.views.campaign_templates")),
    path("campaigns/<int:pk>/", campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/preview/", campaign_preview, name="campaign_preview"),
    path("campaigns/<int:pk>/send/", campaign_send, name="campaign_send"),
    path("campaigns/<int:pk>/pause/", campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume/", campaign_resume, name="campaign_resume"),
    path("campaigns/<int:pk>/cancel/", campaign_cancel, name="campaign_cancel"),
    path("campaigns/<int:pk>/delete/", campaign_delete, name="campaign_delete"),
    path("campaigns/<int:pk>/test/", campaign_test, name="campaign_test"),
    path("", include("postroom.web.views.campaign_links")),
]
