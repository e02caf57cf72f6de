"""Forms of Contact Email: compose, and the saved templates.

They check shape and show errors next to fields; the rules are the services'
(postroom.compose.services and email_templates), so the API applies the same ones.
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict

from postroom.accounts.models import User
from postroom.compose.email_templates import NAME_MAX_LENGTH, SUBJECT_MAX_LENGTH
from postroom.compose.html import html_is_blank, html_sanitize
from postroom.compose.models import EmailTemplate
from postroom.compose.recipients import addresses_split
from postroom.compose.services import ComposeRequest
from postroom.core.errors import PostroomError
from postroom.mail.addresses import parse_address
from postroom.mail.message import Attachment
from postroom.outbox.models import Source

# A recipient field holds at most 100 addresses (postroom.compose.services) of at most a
# header line each (998 characters, RFC 5322 §2.1.1).
RECIPIENTS_MAX_LENGTH = 100 * 998
# Which field of the form shows a service error about a field of the service.
_ERROR_FIELDS = {"html": "text", "body": "text", "attachments": "attachments"}

MERGE_HELP = (
    "Merge fields: {{ contact.first_name }}, {{ contact.last_name }}, {{ contact.name }}, "
    "{{ contact.email }}, {{ contact.company }} (the To recipient's: with several, send "
    "Individually), {{ user.name }}, {{ user.email }}, {{ company.name }}. A fallback for an "
    'empty one: {{ contact.first_name or "there" }}.'
)
# The two ways to send (postroom.compose.services): one email to all is what a mail program
# does, so it is the default; individually is a mail merge.
TOGETHER = "together"
INDIVIDUALLY = "individually"
DELIVERY_CHOICES = [
    (TOGETHER, "One email to all recipients"),
    (INDIVIDUALLY, "Individually (one email each, with their own merge fields)"),
]


def add_compose_error(form: forms.Form, error: PostroomError) -> None:
    """Show a service error next to its field, or above the form when it names none."""
    field = _ERROR_FIELDS.get(error.field or "", error.field)
    form.add_error(field if field in form.fields else None, error.message)


def sanitized_post(data: QueryDict) -> QueryDict:
    """The posted form with its rich-text body sanitized: it is shown again in the editor
    when the form comes back with an error, and must never carry a script there."""
    data = data.copy()
    html = data.get("html")
    if isinstance(html, str) and html:
        data["html"] = html_sanitize(html)
    return data


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _AttachmentsField(forms.FileField):
    """Any number of files. The view reads them (request.FILES.getlist): the service checks
    names, types and the total size, with one error message for all of them."""

    widget = _MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> None:
        return None


def uploaded_attachments(files: list[UploadedFile]) -> list[Attachment]:
    """The uploaded files as attachments. The type comes from the file name (the browser's
    own guess is often empty or odd), application/octet-stream when it says nothing."""
    attachments = []
    for upload in files:
        name = upload.name or "attachment"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        attachments.append(Attachment(filename=name, content_type=content_type, data=upload.read()))
    return attachments


def _recipients_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=RECIPIENTS_MAX_LENGTH,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
    )


class _BodyFields(forms.Form):
    """Subject and body, shared by the compose form and the template form."""

    subject = forms.CharField(
        label="Subject",
        required=False,
        max_length=SUBJECT_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    text = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        help_text=MERGE_HELP,
        widget=forms.Textarea(attrs={"rows": 12}),
    )
    # The rich-text editor's HTML. Only compose.js fills it, when the editor is in use, so
    # without scripts the plain-text body is always the one sent.
    html = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def body(self) -> tuple[str, str]:
        """(text, html): the rich-text body when the editor sent one, else the plain one."""
        html = self.cleaned_data.get("html", "")
        if html and not html_is_blank(html):
            return "", html
        return self.cleaned_data.get("text", ""), ""

    def editor_html(self) -> str:
        """The HTML the editor starts with (sanitized: see `sanitized_post`)."""
        if self.is_bound:
            return str(self.data.get("html", ""))
        return str(self.initial.get("html", ""))


class ComposeForm(_BodyFields):
    key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)
    # Not required: a form from before the choice existed (or without it) sends one email.
    delivery = forms.ChoiceField(
        label="Send as",
        choices=DELIVERY_CHOICES,
        initial=TOGETHER,
        required=False,
        widget=forms.RadioSelect,
    )
    to = _recipients_field(
        "To",
        "One address per line, or separated by commas: ann@example.com or "
        "Ann Smith &lt;ann@example.com&gt;.",
    )
    cc = _recipients_field(
        "Cc", "Sees the email and who it went to. Sent individually: on each email."
    )
    bcc = _recipients_field(
        "Bcc", "Hidden from the other recipients. Sent individually: on each email."
    )
    template = forms.ModelChoiceField(
        label="Template",
        queryset=EmailTemplate.objects.order_by("name_key"),
        required=False,
        empty_label="No template",
    )
    preview = forms.IntegerField(
        label="Preview for To recipient no.",
        min_value=1,
        initial=1,
        required=False,
        widget=forms.NumberInput(attrs={"style": "width: 5rem;"}),
    )
    # Last of the inputs: a browser posts fields in page order, and when the files pass the
    # size cap the rest of the upload is dropped; every field before them still arrives.
    attachments = _AttachmentsField(label="Attachments", required=False)

    field_order = [
        "key", "delivery", "to", "cc", "bcc", "template", "subject", "text", "html", "preview",
        "attachments",
    ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and not self.initial.get("key"):
            self.initial["key"] = uuid.uuid4().hex

    def _addresses(self, name: str, kind: str) -> list[str]:
        values = addresses_split(self.cleaned_data.get(name, ""))
        problems = []
        for index, value in enumerate(values, start=1):
            try:
                parse_address(value, label=f"Recipient {index} ({kind})", field=name)
            except PostroomError as error:
                problems.append(error.message)
        if problems:
            raise forms.ValidationError(problems)
        return values

    def clean_to(self) -> list[str]:
        return self._addresses("to", "To")

    def clean_cc(self) -> list[str]:
        return self._addresses("cc", "Cc")

    def clean_bcc(self) -> list[str]:
        return self._addresses("bcc", "Bcc")

    def clean_key(self) -> str | None:
        return self.cleaned_data.get("key") or None

    def clean_delivery(self) -> str:
        return self.cleaned_data.get("delivery") or TOGETHER

    def is_individual(self) -> bool:
        """Whether the form asks for one email per To recipient (valid, or as typed)."""
        if self.is_bound:
            return self.data.get("delivery") == INDIVIDUALLY
        return self.initial.get("delivery") == INDIVIDUALLY

    def compose_request(
        self, *, user: User, attachments: list[Attachment], idempotency_key: str | None = None
    ) -> ComposeRequest:
        """What the valid form asks the compose service for."""
        text, html = self.body()
        return ComposeRequest(
            source=Source.COMPOSE,
            user=user,
            to=self.cleaned_data["to"],
            cc=self.cleaned_data["cc"],
            bcc=self.cleaned_data["bcc"],
            subject=self.cleaned_data["subject"],
            text=text,
            html=html,
            template=self.cleaned_data["template"],
            attachments=attachments,
            idempotency_key=idempotency_key,
            is_individual=self.cleaned_data["delivery"] == INDIVIDUALLY,
        )


class EmailTemplateForm(_BodyFields):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        help_text="Shown in the template list on the compose page; unique.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    field_order = ["name", "subject", "text", "html"]
