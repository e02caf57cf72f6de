"""Forms of the campaign pages. They check shape and show errors next to fields; the rules
are the services' (postroom.campaigns), so the API applies the same ones."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.conf import settings

from postroom.accounts.models import User
from postroom.audiences.selectors import list_list, segment_list
from postroom.campaigns.campaign_templates import NAME_MAX_LENGTH, TemplateFields
from postroom.campaigns.models import Campaign, CampaignTemplate, SenderKind
from postroom.campaigns.services import MAX_TEST_ADDRESSES, CampaignFields

MERGE_HELP = (
    "Merge fields: {{ contact.first_name }}, {{ contact.last_name }}, {{ contact.name }}, "
    "{{ contact.email }}, {{ contact.company }}, {{ company.name }} and "
    '{{ unsubscribe.url }}. A default: {{ contact.first_name or "there" }}.'
)


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class CampaignTemplateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX_LENGTH)
    html = forms.CharField(
        label="HTML",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "mono"}),
        help_text=(
            "The whole letter, with a &lt;style&gt; block if you like: the CSS is written into "
            "each element for mail programs when it is sent. " + MERGE_HELP
        ),
    )
    text = forms.CharField(
        label="Plain text",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "mono"}),
        help_text="Leave empty to generate it from the HTML (shown in the preview).",
    )

    def fields_value(self) -> TemplateFields:
        data = self.cleaned_data
        return TemplateFields(name=data["name"], html=data["html"], text=data["text"])


class _ChoiceIds(forms.TypedMultipleChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(coerce=int, required=False, **kwargs)


class CampaignForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200, help_text="Only you and your team see it.")
    subject = forms.CharField(
        label="Subject", max_length=998, help_text="May use merge fields: {{ contact.first_name }}."
    )
    template = forms.TypedChoiceField(label="Template", coerce=int)
    sender_kind = forms.ChoiceField(
        label="From", choices=SenderKind.choices, widget=forms.RadioSelect
    )
    sender_user = forms.TypedChoiceField(
        label="User",
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Under the company's send-as policy (see the help page).",
    )
    list_ids = _ChoiceIds(
        label="Lists", widget=forms.CheckboxSelectMultiple, help_text="Members of any of them."
    )
    segment_ids = _ChoiceIds(
        label="Segments",
        widget=forms.CheckboxSelectMultiple,
        help_text="Contacts matching any of them. Each address gets one message.",
    )
    scheduled_at = forms.DateTimeField(
        label="Send at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="Empty: when you press Send.",
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=())
    throttle_per_minute = forms.IntegerField(
        label="At most per minute", min_value=0, initial=0, help_text="0: no limit of its own."
    )
    throttle_per_hour = forms.IntegerField(
        label="At most per hour",
        min_value=0,
        initial=0,
        help_text="On top of the SMTP server's own limits.",
    )
    auto_pause_window = forms.IntegerField(
        label="Watch the last … messages", min_value=10, initial=100
    )
    auto_pause_percent = forms.IntegerField(
        label="Pause when more than … % failed",
        min_value=1,
        max_value=100,
        initial=10,
        help_text="Permanent failures only (a bad address); temporary ones are retried.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template_field: Any = self.fields["template"]
        template_field.choices = [
            ("", "Choose a template"),
            *CampaignTemplate.objects.order_by("name").values_list("pk", "name"),
        ]
        users: Any = self.fields["sender_user"]
        users.choices = [
            ("", "Choose a user"),
            *(
                (user.pk, f"{user.name} <{user.email}>")
                for user in User.objects.filter(is_active=True).exclude(email="").order_by("pk")
            ),
        ]
        lists: Any = self.fields["list_ids"]
        lists.choices = [
            (item.pk, f"{item.name} ({item.member_count})")  # type: ignore[attr-defined]
            for item in list_list()
        ]
        segments: Any = self.fields["segment_ids"]
        segments.choices = list(segment_list().values_list("pk", "name"))
        zones: Any = self.fields["time_zone"]
        zones.choices = time_zone_choices()
        if not self.is_bound and "time_zone" not in self.initial:
            self.initial["time_zone"] = settings.TIME_ZONE

    def clean_scheduled_at(self) -> dt.datetime | None:
        # The browser sends a wall-clock time; it is in the zone chosen beside it.
        value: dt.datetime | None = self.cleaned_data["scheduled_at"]
        return value.replace(tzinfo=None) if value is not None else None

    def fields_value(self) -> CampaignFields:
        data = self.cleaned_data
        zone = data.get("time_zone") or settings.TIME_ZONE
        scheduled = data["scheduled_at"]
        if scheduled is not None:
            scheduled = scheduled.replace(tzinfo=zoneinfo.ZoneInfo(zone))
        return CampaignFields(
            name=data["name"],
            subject=data["subject"],
            template_id=data["template"],
            sender_kind=data["sender_kind"],
            sender_user_id=data["sender_user"],
            list_ids=tuple(data["list_ids"]),
            segment_ids=tuple(data["segment_ids"]),
            scheduled_at=scheduled,
            time_zone=zone,
            throttle_per_minute=data["throttle_per_minute"],
            throttle_per_hour=data["throttle_per_hour"],
            auto_pause_window=data["auto_pause_window"],
            auto_pause_percent=data["auto_pause_percent"],
        )


def campaign_initial(campaign: Campaign) -> dict[str, Any]:
    scheduled = campaign.scheduled_at
    zone = campaign.time_zone or settings.TIME_ZONE
    return {
        "name": campaign.name,
        "subject": campaign.subject,
        "template": campaign.template_id,
        "sender_kind": campaign.sender_kind,
        "sender_user": campaign.sender_user_id,
        "list_ids": campaign.list_ids,
        "segment_ids": campaign.segment_ids,
        "scheduled_at": scheduled.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
        if scheduled
        else None,
        "time_zone": zone,
        "throttle_per_minute": campaign.throttle_per_minute,
        "throttle_per_hour": campaign.throttle_per_hour,
        "auto_pause_window": campaign.auto_pause_window,
        "auto_pause_percent": campaign.auto_pause_percent,
    }


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        label="Send a test to",
        widget=forms.TextInput(attrs={"placeholder": "you@example.com, colleague@example.com"}),
        help_text=(
            f"Up to {MAX_TEST_ADDRESSES} addresses, separated by commas. Each is filled in as "
            "the contact with that address, or a sample person; the subject starts with [Test]."
        ),
    )

    def addresses_value(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["addresses"].split(",") if part.strip()]
