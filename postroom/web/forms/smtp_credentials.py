"""The forms of the SMTP credentials pages. The rules are the service's (postroom.smtpd)."""

from __future__ import annotations

from typing import Any

from django import forms

from postroom.smtpd import services
from postroom.smtpd.models import SmtpCredential


def _lines(value: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in value.splitlines() if line.strip())


class SmtpCredentialForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="Which system logs in, such as “ERP invoices”."
    )
    allowed_senders = forms.CharField(
        label="May send as",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One per line: an address (invoices@acme.example) or a whole domain "
        "(@acme.example). Both the envelope sender and the message's From must be one of them.",
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Messages per minute",
        initial=600,
        min_value=1,
        max_value=services.MAX_RATE_LIMIT_PER_MINUTE,
        help_text="Over this, MAIL FROM gets a 450 and the system tries again a minute later.",
    )
    max_recipients = forms.IntegerField(
        label="Recipients per message",
        initial=100,
        min_value=1,
        max_value=services.MAX_RECIPIENTS,
    )
    networks_without_auth = forms.CharField(
        label="Networks that may send without a password",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="Empty (the safe default): the system must log in. For a device that cannot, "
        "its address or network, one per line (10.0.0.5, 192.168.10.0/24).",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def settings(self) -> services.CredentialSettings:
        data = self.cleaned_data
        return services.CredentialSettings(
            name=data["name"],
            allowed_senders=_lines(data["allowed_senders"]),
            rate_limit_per_minute=data["rate_limit_per_minute"],
            max_recipients=data["max_recipients"],
            networks_without_auth=_lines(data["networks_without_auth"]),
            is_active=data["is_active"],
        )


class SmtpCredentialCreateForm(SmtpCredentialForm):
    username = forms.CharField(
        label="User name",
        max_length=64,
        help_text="What the system enters as its SMTP login: 3 to 64 of a–z, 0–9, . - _ "
        "(for example erp-invoices). Postroom makes the password.",
    )
    field_order = ["name", "username"]


def smtp_credential_initial(credential: SmtpCredential) -> dict[str, Any]:
    return {
        "name": credential.name,
        "allowed_senders": "\n".join(credential.allowed_senders),
        "rate_limit_per_minute": credential.rate_limit_per_minute,
        "max_recipients": credential.max_recipients,
        "networks_without_auth": "\n".join(credential.networks_without_auth),
        "is_active": credential.is_active,
    }
