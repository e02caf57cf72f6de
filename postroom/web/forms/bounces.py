"""The bounce mailbox's form (Company → Bounce mailbox). The checks are the service's
(postroom.bounces.services.bounce_mailbox_clean), so each message shows next to its field."""

from __future__ import annotations

from django import forms

from postroom.bounces.models import BounceMailbox, MailboxAuth, Protocol, Security
from postroom.bounces.services import (
    POLL_MINUTES,
    SOFT_DAYS,
    SOFT_LIMIT,
)

PORT_HELP = (
    "Leave blank for the standard port: IMAP 993 with TLS from the first byte, 143 with "
    "STARTTLS or none; POP3 995 and 110."
)


class BounceMailboxForm(forms.Form):
    is_enabled = forms.BooleanField(
        label="Read this mailbox",
        required=False,
        help_text="The worker checks it every few minutes (below) and acts on each bounce.",
    )
    protocol = forms.ChoiceField(label="Protocol", choices=Protocol.choices)
    host = forms.CharField(label="Server address", required=False, max_length=253)
    port = forms.IntegerField(
        label="Port", required=False, min_value=1, max_value=65535, help_text=PORT_HELP
    )
    security = forms.ChoiceField(label="Security", choices=Security.choices)
    username = forms.CharField(
        label="User name", required=False, max_length=320, help_text="Usually the address."
    )
    auth_method = forms.ChoiceField(label="Log in with", choices=MailboxAuth.choices)
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,  # spaces can be part of a password
        # render_value=False: a stored or typed password is never sent back to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current password.",
    )
    password_clear = forms.BooleanField(label="Clear the stored password", required=False)
    folder = forms.CharField(
        label="Folder", max_length=200, help_text="IMAP: where bounces arrive (usually INBOX)."
    )
    processed_folder = forms.CharField(
        label="Processed folder",
        max_length=200,
        help_text="IMAP: each mail read is moved here (made if missing), never deleted.",
    )
    ca_certificate = forms.CharField(
        label="CA certificate",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Only for a server whose certificate a company CA signed: its PEM text.",
    )
    poll_minutes = forms.IntegerField(
        label="Check every (minutes)", min_value=POLL_MINUTES[0], max_value=POLL_MINUTES[1]
    )
    soft_bounce_limit = forms.IntegerField(
        label="Soft bounces before suppression",
        min_value=SOFT_LIMIT[0],
        max_value=SOFT_LIMIT[1],
        help_text="A full mailbox or a lasting temporary failure: this many suppress the address.",
    )
    soft_bounce_days = forms.IntegerField(
        label="Soft bounces counted over (days)", min_value=SOFT_DAYS[0], max_value=SOFT_DAYS[1]
    )


def bounce_mailbox_initial(mailbox: BounceMailbox) -> dict[str, object]:
    return {
        name: getattr(mailbox, name)
        for name in BounceMailboxForm.base_fields
        if name not in ("password", "password_clear")
    }
