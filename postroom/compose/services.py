"""Compose: write an email and queue it, from a `ComposeRequest`: the Contact Email page calls
`message_compose` (and `message_compose_preview`), the API `compose_prepare`, then queues.

Contact Email is how a person writes to contacts: as the seed says, mail to contacts comes
from the user's own address so that replies reach the user (the company's send-as policy,
applied by message_enqueue, decides what From says when the relay refuses that address).
It sends in one of two ways (issue 8 §6):

- **one email to all recipients** (the default, what any mail program does): To holds every
  To recipient, who see each other and the Cc; Cc and Bcc get the email once. A merge field
  about the recipient (`{{ contact.first_name }}`) names the one To recipient, so with
  several it is refused, naming the fields and the way out;
- **individually** (`is_individual`, a mail merge): each To recipient gets their own email
  with their own merge fields and sees only their own address. Each of those emails carries
  the Cc and Bcc, as Cc means "the recipient sees who else is in the conversation": a Cc'd
  colleague gets one copy per To recipient, which `compose_plan` lets the page say before Send.

The body is plain text, or rich text (HTML from the editor, sanitized; the text part is then
generated from it), and may come from a saved template.

The API is a system naming what it sends: one message to all its recipients, its subject and
body as given, or a saved template filled from its `data` exactly as Contact Email fills it.
`ComposeRules` holds every difference between the two, in one place.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.compose.email_templates import email_template_get_by_ref
from postroom.compose.html import html_is_blank, html_sanitize
from postroom.compose.merge_fields import merge_context, merge_schema
from postroom.compose.models import EmailTemplate
from postroom.compose.recipients import (
    Addressee,
    ComposePlan,
    RecipientInput,
    addressee_list,
    recipients_plan,
)
from postroom.compose.templating import (
    RenderedBody,
    body_render,
    letter_check_shared,
    letter_compile,
)
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address
from postroom.mail.header_text import check_header_text
from postroom.mail.message import Attachment, OutgoingEmail, build_message, new_message_id
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Lane, Message, Source
from postroom.outbox.send_as import SenderChoice, send_as_apply, user_address

# A person writes to a few people at a time. More To recipients than this (in one email, or
# one email each) is a mailing, which belongs in a campaign, with its unsubscribe link and
# throttling.
MAX_TO_RECIPIENTS = 100
# Cc and Bcc may be on every email of a compose: the same bound for each field.
MAX_COPY_RECIPIENTS = 100
# Sent individually, each To recipient's email stores its own copy of the attachments. One
# compose writes at most this many full-size messages' worth into the outbox (250 MB with the
# default 25 MB limit); sending a big file to many people is what a link is for.
MAX_ATTACHMENT_COPIES_IN_MESSAGES = 10
# What makes a form's "send" key: a UUID's hex digits (the compose page makes one per form).
_SEND_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ComposeRules:
    """How one channel's request is read."""

    # The request may ask for one email per To recipient (`is_individual`). The channel's
    # idempotency key is then numbered per email, in both ways of sending, so that a form
    # sent again the other way conflicts with the first instead of sending twice.
    can_send_individually: bool
    # An address that belongs to a contact is that contact (its name in the header, its merge
    # fields), and the same address is kept once; else the addresses are used as given.
    is_addressed_to_contacts: bool
    is_written_merged: bool  # the subject and body as written are merge templates
    is_template_exclusive: bool  # a template with a written subject or body is refused
    is_content_required: bool  # a subject, and a body or a file, must be there
    max_to: int | None  # recipients in To, and in Cc and in Bcc each (None: the caller's)
    max_copies: int | None
    template_field_prefix: str  # how errors in a saved template's parts name them
    values_field: str  # the field blamed when a merged value puts a line break in the subject
    # What to do when contact fields meet an email with several To recipients.
    shared_contact_advice: str


CONTACT_EMAIL = ComposeRules(
    can_send_individually=True,
    is_addressed_to_contacts=True,
    is_written_merged=True,
    is_template_exclusive=False,
    is_content_required=True,
    max_to=MAX_TO_RECIPIENTS,
    max_copies=MAX_COPY_RECIPIENTS,
    template_field_prefix="",
    values_field="subject",
    shared_contact_advice=(
        'Choose "Individually" to give each To recipient their own email with their own '
        "merge fields, or take the field out."
    ),
)
API_MESSAGE = ComposeRules(
    can_send_individually=False,
    is_addressed_to_contacts=False,
    is_written_merged=False,
    is_template_exclusive=True,
    is_content_required=False,
    max_to=None,  # the API's schema caps each field (postroom.api.schemas)
    max_copies=None,
    template_field_prefix="template.",
    values_field="data",
    shared_contact_advice=(
        "Send one request per recipient, or give the values as `contact` in data."
    ),
)
RULES = {Source.COMPOSE: CONTACT_EMAIL, Source.API: API_MESSAGE}


@dataclass(frozen=True)
class ComposeRequest:
    """One email as written, and how to queue it: the input of `message_compose`.

    `source` is the channel (Source.COMPOSE for the Contact Email page, Source.API) and picks
    its `ComposeRules`. `user` is who writes; `from_` None means the user's own address.
    `is_individual` asks for one email per To recipient instead of one email to all (the
    page's choice; the API sends one). `idempotency_key` is the key as stored; where the rules
    number it, each email gets it with ":<n>" appended.
    """

    source: Source
    user: User | None
    from_: Address | None = None
    to: Sequence[RecipientInput] = ()
    cc: Sequence[RecipientInput] = ()
    bcc: Sequence[RecipientInput] = ()
    reply_to: Sequence[Address] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    template: EmailTemplate | str | None = None  # a saved template, or its id or name
    data: Mapping[str, Any] | None = None  # more merge values, for a template (the API's)
    attachments: Sequence[Attachment] = ()
    headers: Mapping[str, str] | None = None
    lane: Lane = Lane.TRANSACTIONAL
    not_before_at: dt.datetime | None = None
    idempotency_key: str | None = None
    is_individual: bool = False


@dataclass(frozen=True)
class ComposedMessage:
    """One message of a compose, as written: From is the writer's address."""

    addressees: tuple[Addressee, ...]  # its To recipients (the API's: only when merged)
    email: OutgoingEmail

    @property
    def addressee(self) -> Addressee | None:
        """Its To recipient, when it has exactly one: whom `contact` names."""
        return self.addressees[0] if len(self.addressees) == 1 else None


def compose_form_key(*, key: str | None) -> str | None:
    """The idempotency key of a compose form's own key (32 hex digits, one per form): a
    second submit of the same form returns the messages the first one queued."""
    if key is None:
        return None
    if _SEND_KEY.fullmatch(key) is None:
        raise ValidationError("The form's send key is not valid; reload the page.", field="key")
    return f"compose:{key}"


def message_compose(*, request: ComposeRequest) -> list[Message]:
    """Check everything, then queue the messages of `request`, all or none, and return them.

    Raises ValidationError (with `field`) for the first problem: no address of the user, a
    bad address, a template error, a missing subject, attachments over the size limit.
    A message queued before with the same idempotency key comes back with `is_replay`.
    """
    _, composed = compose_prepare(request=request)
    key = request.idempotency_key
    is_numbered = RULES[request.source].can_send_individually
    with transaction.atomic():
        return [
            message_enqueue(
                email=item.email,
                source=request.source,
                lane=request.lane,
                sender_user=request.user,
                idempotency_key=f"{key}:{index}" if key and is_numbered else key,
                not_before_at=request.not_before_at,
            )
            for index, item in enumerate(composed)
        ]


@dataclass(frozen=True)
class ComposePreview:
    """The exact message one To recipient would get (or the one email to all), and the subject
    each email gets."""

    plan: ComposePlan
    composed: list[ComposedMessage]
    index: int  # 0-based, into `composed`
    choice: SenderChoice  # the shown message as the send-as policy sends it
    raw: bytes
    fallback_raw: bytes | None  # the "via the company" version (send-as policy auto)

    @property
    def shown(self) -> ComposedMessage:
        return ComposedMessage(self.composed[self.index].addressees, self.choice.email)


def message_compose_preview(*, request: ComposeRequest, number: int = 1) -> ComposePreview:
    """Build, without queueing, the message of To recipient `number` (1-based) when sending
    individually, or the one email to all (whatever the number)."""
    plan, composed = compose_prepare(request=request)
    if not request.is_individual:
        number = 1
    if not 1 <= number <= len(composed):
        raise ValidationError(
            f"There {'is' if len(composed) == 1 else 'are'} {len(composed)} To "
            f"recipient{'s' if len(composed) != 1 else ''}; preview number 1 to {len(composed)}.",
            field="preview",
        )
    choice = send_as_apply(email=composed[number - 1].email, user=request.user)
    now = timezone.now()
    message_id = new_message_id(choice.email.from_.addr_spec.rpartition("@")[2])

    def built(email: OutgoingEmail) -> bytes:
        return build_message(
            email,
            message_id=message_id,
            date=now,
            max_attachment_bytes=settings.POSTROOM_MAX_MESSAGE_BYTES,
        ).raw

    return ComposePreview(
        plan=plan,
        composed=composed,
        index=number - 1,
        choice=choice,
        raw=built(choice.email),
        fallback_raw=built(choice.fallback) if choice.fallback is not None else None,
    )


# --- preparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Content:
    """The subject and body to send, and whether they are merge templates."""

    subject: str
    text: str | None
    html: str | None
    is_merged: bool
    is_from_template: bool


def _content(request: ComposeRequest, rules: ComposeRules) -> _Content:
    """The subject and body to render: as written, or the saved template's."""
    template = request.template
    if rules.is_template_exclusive:
        is_written = bool(request.subject) or request.text is not None or request.html is not None
        if template is not None and is_written:
            raise ValidationError(
                "Give either a template (with data) or subject, text and html, not both: the "
                "template has its own subject and body.",
                field="template",
            )
        if request.data and template is None:
            raise ValidationError(
                "data fills the merge fields of a template: give `template` too, or leave "
                "data out.",
                field="data",
            )
        if template is not None:
            template = _template(template)
            return _Content(template.subject, template.text, template.html, True, True)
        return _Content(request.subject, request.text, request.html, False, False)
    if isinstance(template, str):
        template = _template(template)
    subject, text, html = request.subject, request.text or "", request.html or ""
    is_from_template = (
        template is not None and not subject.strip() and not text.strip() and not html.strip()
    )
    if is_from_template:
        assert template is not None
        subject, text, html = template.subject, template.text, template.html
    if html and html_is_blank(html):
        html = ""
    return _Content(
        subject,
        text,
        html_sanitize(html) if html else "",
        rules.is_written_merged,
        is_from_template,
    )


def _template(template: EmailTemplate | str) -> EmailTemplate:
    if isinstance(template, EmailTemplate):
        return template
    return email_template_get_by_ref(ref=template, field="template")


def compose_prepare(*, request: ComposeRequest) -> tuple[ComposePlan, list[ComposedMessage]]:
    """Check the request and build its emails, one to all or one per To recipient, unqueued."""
    rules = RULES[request.source]
    if request.from_ is not None:
        from_ = request.from_
    elif request.user is not None:
        # A clear error first: mail to contacts comes from the user's address.
        from_ = user_address(request.user)
    else:
        raise ValidationError("Say who the email is from.", field="from")
    content = _content(request, rules)
    _check_attachments(request.attachments)
    plan = _plan(request, rules)
    _check_plan(plan)
    if plan.is_individual:
        _check_attachment_copies(request.attachments, plan.messages)
    if rules.is_content_required:
        _check_written(content, request.attachments)
    groups = plan.groups()
    bodies = _bodies(request, rules, content, groups)
    return plan, [
        ComposedMessage(
            group,
            OutgoingEmail(
                from_=from_,
                to=[addressee.address for addressee in group],
                cc=[addressee.address for addressee in plan.cc],
                bcc=[addressee.address for addressee in plan.bcc],
                reply_to=list(request.reply_to),
                subject=body.subject,
                text=body.text,
                html=body.html,
                attachments=list(request.attachments),
                headers=dict(request.headers or {}),
            ),
        )
        for group, body in zip(groups, bodies, strict=True)
    ]


def compose_plan(
    *,
    to: Sequence[RecipientInput],
    cc: Sequence[RecipientInput],
    bcc: Sequence[RecipientInput],
    is_individual: bool,
) -> ComposePlan:
    """What Send on the Contact Email page will do with these recipients: how many emails,
    and how many copies each Cc and Bcc recipient gets. Raises ValidationError for an address
    that is not one, or too many."""
    request = ComposeRequest(
        source=Source.COMPOSE, user=None, to=to, cc=cc, bcc=bcc, is_individual=is_individual
    )
    return _plan(request, CONTACT_EMAIL)


def _plan(request: ComposeRequest, rules: ComposeRules) -> ComposePlan:
    if request.is_individual and not rules.can_send_individually:
        raise ValueError(f"{request.source} sends one email to all its recipients")
    return recipients_plan(
        to=request.to,
        cc=request.cc,
        bcc=request.bcc,
        is_individual=request.is_individual,
        is_addressed_to_contacts=rules.is_addressed_to_contacts,
        max_to=rules.max_to,
        max_copies=rules.max_copies,
    )


def _check_plan(plan: ComposePlan) -> None:
    if plan.is_individual and not plan.to:
        raise ValidationError(
            "Add at least one To recipient: each To recipient gets their own email, and the "
            "Cc and Bcc are on each.",
            field="to",
        )
    if not plan.messages:
        raise ValidationError("Add at least one recipient (To, Cc or Bcc).", field="to")


def _check_written(content: _Content, attachments: Sequence[Attachment]) -> None:
    if not content.subject.strip():
        raise ValidationError("Write a subject.", field="subject")
    check_header_text(content.subject, label="Subject", what="the subject", field="subject")
    if not (content.text or "").strip() and not content.html and not attachments:
        raise ValidationError("Write a message, or attach a file.", field="body")


def _bodies(
    request: ComposeRequest,
    rules: ComposeRules,
    content: _Content,
    groups: list[tuple[Addressee, ...]],
) -> list[RenderedBody]:
    """Each email's subject and body: merged for its To recipient, or as written."""
    if not content.is_merged:
        body = RenderedBody(content.subject, content.text, content.html)
        return [body] * len(groups)
    data = request.data or {}
    schema = merge_schema(data)
    compiled = letter_compile(
        subject=content.subject,
        text=content.text,
        html=content.html,
        roots=schema.keys(),
        fields=schema,
        field_prefix=rules.template_field_prefix if content.is_from_template else "",
    )
    shared = [group for group in groups if len(group) != 1]
    if shared and "contact" not in data:  # data's own `contact` is the same for everyone
        letter_check_shared(compiled, to_count=len(shared[0]), advice=rules.shared_contact_advice)
    if request.from_ is not None:
        sender = {"name": request.from_.display_name, "email": request.from_.addr_spec}
    else:
        assert request.user is not None
        sender = {"name": request.user.name, "email": request.user.email}
    company_name = company_get().name
    bodies = []
    for group in groups:
        context = merge_context(
            addressee=_merge_addressee(group, rules),
            sender=sender,
            company_name=company_name,
            data=data,
        )
        body = body_render(
            compiled,
            context,
            max_chars=settings.POSTROOM_MAX_MESSAGE_BYTES,
            subject_field=rules.values_field,
        )
        if rules.is_content_required and not body.subject:
            whom = f" for {group[0].address.addr_spec}" if len(group) == 1 else ""
            raise ValidationError(
                f"The subject is empty{whom} once its merge fields are filled in; write some "
                "text around them.",
                field="subject",
            )
        bodies.append(body)
    return bodies


def _merge_addressee(group: tuple[Addressee, ...], rules: ComposeRules) -> Addressee | None:
    """Whom `contact` names in an email: its one To recipient, as a contact when it is one
    (the API's addresses are looked up only here, where a template needs them)."""
    if len(group) != 1:
        return None
    (addressee,) = group
    if addressee.contact is None and not rules.is_addressed_to_contacts:
        return addressee_list([addressee.address], kind="To", field="to", limit=1)[0]
    return addressee


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
