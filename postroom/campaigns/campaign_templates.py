"""Campaign templates: read, create, change, delete, and preview as a contact.

A template is checked when it is saved: its merge tags (the one merge language, the
campaign's fields `CAMPAIGN_FIELDS`) and its CSS, so that a broken one is refused at once
rather than at Send. Marketers and administrators own them (postroom.campaigns.roles); a
template a campaign uses cannot be deleted, since the campaign's page still shows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.campaigns import links
from postroom.campaigns.audience import AudienceRow
from postroom.campaigns.letters import css_inlined, letter_check, letter_warnings
from postroom.campaigns.models import CampaignTemplate
from postroom.campaigns.sending import CampaignLetter, recipient_values
from postroom.company.selectors import company_get
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact
from postroom.core.errors import NotFoundError, ValidationError
from postroom.mail.addresses import Address
from postroom.mail.header_text import reject_control_characters
from postroom.mail.message import new_message_id
from postroom.mail.reading import message_read

NAME_MAX_LENGTH = 200  # the model field's length
# A template is a letter: a million characters is about 500 printed pages
# (postroom.mail.merge.MAX_SOURCE_CHARS, the merge language's own bound).
SOURCE_MAX_CHARS = 1_000_000
# Who a preview is addressed to when no contact is chosen.
SAMPLE_ROW = AudienceRow(
    contact_id=0,
    email="jane.doe@example.com",
    first_name="Jane",
    last_name="Doe",
    company="Example Ltd",
)


@dataclass(frozen=True)
class TemplateFields:
    name: str
    html: str = ""
    text: str = ""


def campaign_template_list() -> QuerySet[CampaignTemplate]:
    return CampaignTemplate.objects.select_related("created_by").order_by("name", "id")


def campaign_template_get(*, pk: int) -> CampaignTemplate:
    try:
        return CampaignTemplate.objects.select_related("created_by").get(pk=pk)
    except CampaignTemplate.DoesNotExist:
        raise NotFoundError(
            f"There is no campaign template #{pk}; it may have been deleted."
        ) from None


def _fields_check(fields: TemplateFields) -> TemplateFields:
    name = fields.name.strip()
    if not name:
        raise ValidationError("Give the template a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"The name is {len(name)} characters long; use at most {NAME_MAX_LENGTH}.",
            field="name",
        )
    reject_control_characters(name, label="Name", what="the name", field="name")
    html = fields.html.replace("\r\n", "\n")
    text = fields.text.replace("\r\n", "\n")
    for part, source in (("html", html), ("text", text)):
        if len(source) > SOURCE_MAX_CHARS:
            raise ValidationError(
                f"The {part} is {len(source):,} characters long; at most "
                f"{SOURCE_MAX_CHARS:,} are allowed.",
                field=part,
            )
    if not html.strip() and not text.strip():
        raise ValidationError("Write the HTML, the plain text, or both.", field="html")
    letter_check(subject="", html=html, text=text)
    if html.strip():
        css_inlined(html)  # refuses CSS it cannot inline, now rather than at Send
    return TemplateFields(name=name, html=html, text=text)


def campaign_template_create(*, actor: User | None, fields: TemplateFields) -> CampaignTemplate:
    fields = _fields_check(fields)
    with transaction.atomic():
        template = CampaignTemplate.objects.create(
            name=fields.name, html=fields.html, text=fields.text, created_by=actor
        )
        audit_record(
            actor=actor,
            action="campaign_template.created",
            subject=f"campaign template {template.name}",
            changes={"Name": template.name},
        )
    return template


def campaign_template_update(
    *, actor: User | None, template: CampaignTemplate, fields: TemplateFields
) -> CampaignTemplate:
    """Change a template. Campaigns already sent keep the letter they were sent with (it was
    frozen at Send); drafts use the new one."""
    fields = _fields_check(fields)
    with transaction.atomic():
        changed = [
            label
            for label, old, new in (
                ("Name", template.name, fields.name),
                ("HTML", template.html, fields.html),
                ("Text", template.text, fields.text),
            )
            if old != new
        ]
        template.name, template.html, template.text = fields.name, fields.html, fields.text
        template.save()
        audit_record(
            actor=actor,
            action="campaign_template.changed",
            subject=f"campaign template {template.name}",
            changes={"Changed": ", ".join(changed) or "nothing"},
        )
    return template


def campaign_template_delete(*, actor: User | None, template: CampaignTemplate) -> None:
    used = list(template.campaigns.values_list("name", flat=True)[:3])
    if used:
        raise ValidationError(
            f"The campaign(s) {', '.join(used)} use this template, and their pages show it: "
            "choose another template for them (drafts) or keep it.",
            field="template",
        )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="campaign_template.deleted",
            subject=f"campaign template {template.name}",
            changes={"Name": template.name},
        )
        template.delete()


@dataclass(frozen=True)
class LetterPreview:
    """One recipient's message exactly as the worker would build it."""

    raw: bytes
    subject: str
    from_header: str
    to: str
    warnings: list[str]


def preview_contact(query: str) -> tuple[Contact | None, str]:
    """The contact a preview is for (by address), and a note when there is none."""
    query = query.strip()
    if not query:
        return None, ""
    contact = (
        Contact.objects.select_related("organization")
        .filter(email_key=contact_email_key(query))
        .first()
    )
    if contact is None:
        return None, f"No contact has the address {query}; shown for a sample person."
    return contact, ""


def sample_row(email: str) -> AudienceRow:
    """A person who is no contact, for a test send to `email`: the sample's names."""
    return dataclasses.replace(SAMPLE_ROW, email=email)


def contact_row(contact: Contact) -> AudienceRow:
    return AudienceRow(
        contact_id=contact.pk,
        email=contact.email,
        first_name=contact.first_name,
        last_name=contact.last_name,
        company=contact.organization.name if contact.organization else "",
    )


def letter_preview(
    letter: CampaignLetter,
    *,
    row: AudienceRow,
    campaign_id: int,
    text_written: str,
    html_written: str,
    now: dt.datetime | None = None,
) -> LetterPreview:
    """Render `letter` for `row` (a contact, or SAMPLE_ROW), links and all."""
    company = company_get()
    values = recipient_values(
        row=row,
        company_name=company.name,
        links_for=links.LinkMaker(base=links.public_url(), campaign_id=campaign_id),
        mailto_address=letter.from_.addr_spec,
        is_tracking=bool(letter.tracked_links) or "tracking.open" in letter.html,
    )
    raw = letter.compiled().render(
        to=Address(row.name, row.email),
        message_id=new_message_id(letter.from_.addr_spec.rpartition("@")[2]),
        date=now or timezone.now(),
        values=values,
    )
    content = message_read(raw)
    headers = dict(content.headers)
    html_bytes = len((content.html or "").encode("utf-8"))
    return LetterPreview(
        raw=raw,
        subject=headers.get("Subject", ""),
        from_header=headers.get("From", ""),
        to=headers.get("To", ""),
        warnings=letter_warnings(
            html=html_written, text_written=text_written, rendered_html_bytes=html_bytes
        ),
    )
