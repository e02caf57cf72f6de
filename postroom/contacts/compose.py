"""Contact Email: a user writes to contacts (and to any address), from their own address.

As the seed says, mail to contacts comes from the user's own address so that replies reach
the user; the company's send-as policy (postroom.outbox.send_as) decides what From says when
the relay refuses that address. Every message goes through the outbox.

**Each To recipient gets their own message**: merge fields (`{{ contact.first_name }}`)
resolve for that person, and nobody sees who else was written to. Cc and Bcc recipients are
copied onto each of those messages. An address typed by hand that belongs to a contact is
that contact: its merge fields resolve, and the message shows in the contact's history.

The body is plain text, or rich text (HTML from the editor, sanitized; the text part is
then generated from it). Subject and body may use merge fields, and may come from a saved
template (postroom.contacts.email_templates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact, EmailTemplate
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.header_text import check_header_text
from postroom.mail.html import html_document, html_is_blank, html_sanitize, html_to_text
from postroom.mail.message import Attachment, OutgoingEmail, build_message, new_message_id
from postroom.mail.templating import CompiledTemplate, template_compile
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Source
from postroom.outbox.send_as import SenderChoice, sender_choice, user_address

# The merge fields of Contact Email: what `{{ contact.… }}`, `{{ user.… }}` and
# `{{ company.… }}` may name.
MERGE_FIELDS: dict[str, tuple[str, ...]] = {
    "contact": ("first_name", "last_name", "name", "email", "company"),
    "user": ("name", "email"),
    "company": ("name",),
}
# A person writes to a few people at a time. More To recipients than this (one message
# each) is a mailing, which belongs in a campaign, with its unsubscribe link and throttling.
MAX_TO_RECIPIENTS = 100
# Cc and Bcc are copied onto every message: the same bound for each field.
MAX_COPY_RECIPIENTS = 100
# Each To recipient's message stores its own copy of the attachments. One compose writes at
# most this many full-size messages' worth into the outbox (250 MB with the default 25 MB
# limit); sending a big file to many people is what a link is for.
MAX_ATTACHMENT_COPIES_IN_MESSAGES = 10
# What makes a form's "send" key: a UUID's hex digits (the compose page makes one per form).
_SEND_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Addressee:
    """One recipient: its address, and the contact it belongs to, if any."""

    address: Address
    contact: Contact | None


RecipientInput = Contact | Address | str


def addresses_split(text: str) -> list[str]:
    """Cut a recipient field into addresses at commas, semicolons and line ends, except
    inside quotes or angle brackets ("Smith, Ann" <ann@example.com> is one address)."""
    pieces: list[str] = []
    current: list[str] = []
    is_quoted = is_angle = is_escaped = False
    for char in text:
        if is_escaped:
            is_escaped = False
        elif char == "\\" and is_quoted:
            is_escaped = True
        elif char == '"':
            is_quoted = not is_quoted
        elif char == "<" and not is_quoted:
            is_angle = True
        elif char == ">" and not is_quoted:
            is_angle = False
        elif char in ",;\r\n" and not is_quoted and not is_angle:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()]


def _contact_address(contact: Contact) -> Address:
    return Address(contact.name, contact.email)


def addressee_list(
    values: Sequence[RecipientInput], *, kind: str, field: str, limit: int
) -> list[Addressee]:
    """Parse one recipient field (contacts, Address objects, or text) into addressees.

    Text is parsed strictly (postroom.mail.addresses); an address that belongs to a contact
    becomes that contact. The same address twice is kept once.
    """
    parsed: list[tuple[Address, Contact | None]] = []
    for index, value in enumerate(values, start=1):
        if isinstance(value, Contact):
            parsed.append((_contact_address(value), value))
        elif isinstance(value, Address):
            parsed.append((value, None))
        else:
            label = f"Recipient {index} ({kind})"
            parsed.append((parse_address(value, label=label, field=field), None))
    if len(parsed) > limit:
        raise ValidationError(
            f"{kind}: {len(parsed)} recipients; Contact Email takes at most {limit}. To write "
            "to more people, send a campaign.",
            field=field,
        )
    keys = [contact_email_key(address.addr_spec) for address, contact in parsed if not contact]
    contacts = {
        contact.email_key: contact
        for contact in Contact.objects.filter(email_key__in=keys).select_related("organization")
    }
    addressees: list[Addressee] = []
    seen: set[str] = set()
    for address, contact in parsed:
        key = contact_email_key(address.addr_spec)
        if key in seen:
            continue
        seen.add(key)
        contact = contact or contacts.get(key)
        if contact is not None and not address.display_name and contact.name:
            address = _contact_address(contact)
        addressees.append(Addressee(address, contact))
    return addressees


def contact_values(addressee: Addressee | None) -> dict[str, str]:
    """`contact.…` for one recipient. An address that is no contact has its typed name as
    `name` and empty first and last names; no recipient at all has every field empty."""
    if addressee is None:
        return dict.fromkeys(MERGE_FIELDS["contact"], "")
    contact = addressee.contact
    if contact is None:
        return {
            "first_name": "",
            "last_name": "",
            "name": addressee.address.display_name,
            "email": addressee.address.addr_spec,
            "company": "",
        }
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "email": contact.email,
        "company": contact.organization.name if contact.organization else "",
    }


def merge_context(*, addressee: Addressee | None, user: User, company: Company) -> dict[str, Any]:
    """The merge field values for one To recipient, written by `user`."""
    return {
        "contact": contact_values(addressee),
        "user": {"name": user.name, "email": user.email},
        "company": {"name": company.name},
    }


@dataclass(frozen=True)
class RenderedBody:
    subject: str
    text: str | None  # None: no such part
    html: str | None  # the HTML part's whole document


def body_render(
    compiled: CompiledTemplate, context: Mapping[str, Any], *, subject_field: str = "subject"
) -> RenderedBody:
    """Render subject and body for one recipient. The HTML is sanitized after rendering too
    (a value could hold a link), and without a text body the text part is generated.

    A subject a value put a line break in is refused (header injection), as `subject_field`:
    the field whose values are at fault.
    """
    rendered = compiled.render(context, max_chars=settings.POSTROOM_MAX_MESSAGE_BYTES)
    subject = rendered.subject.strip()
    check_header_text(subject, label="Subject", what="the subject", field=subject_field)
    html = (
        html_sanitize(rendered.html) if rendered.html and not html_is_blank(rendered.html) else ""
    )
    text = rendered.text if rendered.text.strip() else (html_to_text(html) if html else "")
    return RenderedBody(
        subject=subject, text=text or None, html=html_document(html) if html else None
    )


def _parts(
    *, subject: str, text: str, html: str, template: EmailTemplate | None
) -> tuple[str, str, str]:
    """The subject and body to render: as written, or the template's where none is."""
    if template is not None and not subject.strip() and not text.strip() and not html.strip():
        subject, text, html = template.subject, template.text, template.html
    if html and html_is_blank(html):
        html = ""
    return subject, text, html_sanitize(html) if html else ""


def _check_attachments(attachments: Sequence[Attachment]) -> None:
    limit = settings.POSTROOM_MAX_MESSAGE_BYTES
    total = sum(len(attachment.data) for attachment in attachments)
    if total > limit:
        raise ValidationError(
            f"The attachments total {total / 1024 / 1024:.1f} MB; the limit is "
            f"{limit / 1024 / 1024:.1f} MB ({limit:,} bytes, POSTROOM_MAX_MESSAGE_BYTES). Attach "
            "fewer or smaller files, or share large files by link.",
            field="attachments",
        )


def _check_attachment_copies(attachments: Sequence[Attachment], messages: int) -> None:
    limit = settings.POSTROOM_MAX_MESSAGE_BYTES * MAX_ATTACHMENT_COPIES_IN_MESSAGES
    total = sum(len(attachment.data) for attachment in attachments) * messages
    if messages > 1 and total > limit:
        raise ValidationError(
            f"Each of the {messages} To recipients gets their own copy of the attachments: "
            f"{total / 1024 / 1024:.0f} MB in all, more than the "
            f"{limit / 1024 / 1024:.0f} MB one email may queue. Share the files by link, or "
            "send to fewer people at a time.",
            field="attachments",
        )


@dataclass(frozen=True)
class ComposedMessage:
    """One message of a compose: to one To recipient, From as the send-as policy says."""

    addressee: Addressee
    choice: SenderChoice

    @property
    def email(self) -> OutgoingEmail:
        return self.choice.email


def compose_prepare(
    *,
    user: User,
    to: Sequence[RecipientInput],
    cc: Sequence[RecipientInput] = (),
    bcc: Sequence[RecipientInput] = (),
    subject: str = "",
    text: str = "",
    html: str = "",
    attachments: Sequence[Attachment] = (),
    template: EmailTemplate | None = None,
    company: Company | None = None,
) -> list[ComposedMessage]:
    """Check everything and build one message per To recipient, without queueing any.

    Raises ValidationError (with `field`) for the first problem: no address of the user,
    a bad address, a template error, a missing subject, attachments over the size limit.
    """
    company = company or company_get()
    user_address(user)  # a clear error first: mail to contacts comes from the user's address
    subject, text, html = _parts(subject=subject, text=text, html=html, template=template)
    _check_attachments(attachments)
    to_list = addressee_list(to, kind="To", field="to", limit=MAX_TO_RECIPIENTS)
    cc_list = addressee_list(cc, kind="Cc", field="cc", limit=MAX_COPY_RECIPIENTS)
    bcc_list = addressee_list(bcc, kind="Bcc", field="bcc", limit=MAX_COPY_RECIPIENTS)
    if not to_list:
        raise ValidationError(
            "Add at least one To recipient: each To recipient gets their own message, and "
            "Cc and Bcc are copied onto each.",
            field="to",
        )
    _check_attachment_copies(attachments, len(to_list))
    if not subject.strip():
        raise ValidationError("Write a subject.", field="subject")
    check_header_text(subject, label="Subject", what="the subject", field="subject")
    if not text.strip() and not html and not attachments:
        raise ValidationError("Write a message, or attach a file.", field="body")
    compiled = template_compile(
        subject=subject, text=text, html=html, roots=MERGE_FIELDS, fields=MERGE_FIELDS
    )
    composed = []
    for addressee in to_list:
        body = body_render(compiled, merge_context(addressee=addressee, user=user, company=company))
        if not body.subject:
            raise ValidationError(
                f"The subject is empty for {addressee.address.addr_spec} once its merge fields "
                "are filled in; write some text around them.",
                field="subject",
            )
        email = OutgoingEmail(
            from_=user_address(user),
            to=[addressee.address],
            cc=[item.address for item in cc_list],
            bcc=[item.address for item in bcc_list],
            subject=body.subject,
            text=body.text,
            html=body.html,
            attachments=list(attachments),
        )
        composed.append(
            ComposedMessage(addressee, sender_choice(email=email, user=user, company=company))
        )
    return composed


def compose_send(
    *,
    user: User,
    to: Sequence[RecipientInput],
    cc: Sequence[RecipientInput] = (),
    bcc: Sequence[RecipientInput] = (),
    subject: str = "",
    text: str = "",
    html: str = "",
    attachments: Sequence[Attachment] = (),
    template: EmailTemplate | None = None,
    send_key: str | None = None,
) -> list[Message]:
    """Queue one message per To recipient, all or none, and return them.

    `send_key` (the compose form's own key, 32 hex digits) makes a second submit of the same
    form return the messages the first one queued instead of queueing them again.
    """
    if send_key is not None and _SEND_KEY.fullmatch(send_key) is None:
        raise ValidationError("The form's send key is not valid; reload the page.", field="key")
    composed = compose_prepare(
        user=user,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject,
        text=text,
        html=html,
        attachments=attachments,
        template=template,
    )
    with transaction.atomic():
        return [
            message_enqueue(
                email=item.choice.email,
                fallback=item.choice.fallback,
                send_as=item.choice.send_as,
                source=Source.COMPOSE,
                sender_user=user,
                idempotency_key=f"compose:{send_key}:{index}" if send_key else None,
            )
            for index, item in enumerate(composed)
        ]


@dataclass(frozen=True)
class ComposePreview:
    """The exact message one To recipient would get, and the subject each of them gets."""

    composed: list[ComposedMessage]
    index: int  # 0-based, into `composed`
    raw: bytes
    fallback_raw: bytes | None  # the "via the company" version (send-as policy auto)

    @property
    def shown(self) -> ComposedMessage:
        return self.composed[self.index]


def compose_preview(
    *,
    user: User,
    to: Sequence[RecipientInput],
    cc: Sequence[RecipientInput] = (),
    bcc: Sequence[RecipientInput] = (),
    subject: str = "",
    text: str = "",
    html: str = "",
    attachments: Sequence[Attachment] = (),
    template: EmailTemplate | None = None,
    number: int = 1,
) -> ComposePreview:
    """Build, without queueing, the message of To recipient `number` (1-based)."""
    composed = compose_prepare(
        user=user,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject,
        text=text,
        html=html,
        attachments=attachments,
        template=template,
    )
    if not 1 <= number <= len(composed):
        raise ValidationError(
            f"There {'is' if len(composed) == 1 else 'are'} {len(composed)} To "
            f"recipient{'s' if len(composed) != 1 else ''}; preview number 1 to {len(composed)}.",
            field="preview",
        )
    shown = composed[number - 1]
    now = timezone.now()
    message_id = new_message_id(shown.email.from_.addr_spec.rpartition("@")[2])

    def built(email: OutgoingEmail) -> bytes:
        return build_message(
            email,
            message_id=message_id,
            date=now,
            max_attachment_bytes=settings.POSTROOM_MAX_MESSAGE_BYTES,
        ).raw

    fallback = shown.choice.fallback
    return ComposePreview(
        composed=composed,
        index=number - 1,
        raw=built(shown.email),
        fallback_raw=built(fallback) if fallback is not None else None,
    )
