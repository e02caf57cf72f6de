"""The forms of the Webhooks pages. The rules are the service's (postroom.webhooks.services)."""

from __future__ import annotations

from typing import Any

from django import forms

from postroom.core.errors import PostroomError
from postroom.outbox.models import EventKind
from postroom.webhooks import services
from postroom.webhooks.targets import ALLOW_INTERNAL_LABEL


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=services.URL_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}
        ),
        help_text="Where Postroom posts the events, such as "
        "https://erp.example.com/hooks/postroom. Use https:// outside your own network.",
    )
    is_internal_allowed = forms.BooleanField(
        label=ALLOW_INTERNAL_LABEL,
        required=False,
        help_text="Only for a receiver on your own network, such as http://10.0.0.5/hooks. "
        "Without it, Postroom refuses a URL whose host is or resolves to a loopback, private "
        "or other non-public address, so that a webhook cannot reach services that are not "
        "meant to be reached from outside. Link-local addresses (169.254.x.x, where cloud "
        "metadata services answer) stay refused.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=services.DESCRIPTION_MAX_LENGTH,
        help_text="Which system receives them, such as “ERP delivery status”.",
    )
    all_events = forms.BooleanField(
        label="All events",
        required=False,
        initial=True,
        help_text="Includes event types Postroom adds later. Untick to choose below.",
    )
    event_types = forms.MultipleChoiceField(
        label="Only these events",
        required=False,
        choices=[(kind.value, f"{kind.value} — {kind.label}") for kind in EventKind],
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_url(self) -> str:
        try:
            return services.endpoint_url_clean(self.cleaned_data["url"])
        except PostroomError as error:
            raise forms.ValidationError(error.message) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            cleaned["event_types"] = services.endpoint_event_types_clean(
                all_events=bool(cleaned.get("all_events")),
                event_types=cleaned.get("event_types") or [],
            )
        except PostroomError as error:
            self.add_error("event_types", error.message)
        return cleaned


class EndpointEditForm(EndpointForm):
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        help_text="When off, no new events are queued for this endpoint and waiting ones are "
        "held until it is on again.",
    )


class SecretRotateForm(forms.Form):
    keep_previous = forms.BooleanField(
        label="Keep signing with the old secret too, for 24 hours",
        required=False,
        initial=True,
        help_text="Requests carry a signature with each secret, so the receiver keeps "
        "accepting them while you change its setting. Untick if the old secret leaked.",
    )
