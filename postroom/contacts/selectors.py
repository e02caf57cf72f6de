"""Read contacts, companies and tags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse

from postroom.accounts.models import User
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact, ImportJob, Organization, Tag
from postroom.core.errors import NotFoundError
from postroom.mail.classify import Classification, explain_failure
from postroom.mail.replies import Stage
from postroom.outbox.late_outcomes import late_reports_in_words
from postroom.outbox.models import Recipient, RecipientStatus
from postroom.outbox.selectors import message_can_act


@dataclass(frozen=True)
class ContactFilters:
    """What the contact list and the export are narrowed to. Empty means no filter."""

    search: str = ""
    tag: str = ""
    organization_id: int | None = None
    has_consent: bool | None = None
    is_active: bool | None = None

    @property
    def is_empty(self) -> bool:
        return self == ContactFilters()

    def description(self) -> str:
        """The filters in words, for the audit log: "search 'acme', tag 'vip'"."""
        parts = []
        if self.search:
            parts.append(f"search {self.search!r}")
        if self.tag:
            parts.append(f"tag {self.tag!r}")
        if self.organization_id is not None:
            parts.append(f"company #{self.organization_id}")
        if self.has_consent is not None:
            parts.append("consented" if self.has_consent else "not consented")
        if self.is_active is not None:
            parts.append("active" if self.is_active else "inactive")
        return ", ".join(parts) or "all contacts"


def contact_list(*, filters: ContactFilters | None = None) -> QuerySet[Contact]:
    """Contacts matching every filter, by last name then first name. Each word of `search`
    must appear in the first name, last name, address or company name."""
    filters = filters or ContactFilters()
    contacts = Contact.objects.select_related("organization").prefetch_related("tags")
    for word in filters.search.split():
        contacts = contacts.filter(
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
            | Q(organization__name__icontains=word)
        )
    if filters.tag:
        contacts = contacts.filter(tags__name=filters.tag)
    if filters.organization_id is not None:
        contacts = contacts.filter(organization_id=filters.organization_id)
    if filters.has_consent is not None:
        contacts = contacts.filter(marketing_consent=filters.has_consent)
    if filters.is_active is not None:
        contacts = contacts.filter(is_active=filters.is_active)
    # The address is looked up two subqueries down (the latest delivery inside the refusal).
    refused = _refusal_of(OuterRef(OuterRef("email")))
    contacts = contacts.annotate(is_address_refused=Exists(refused))
    return contacts.order_by("last_name", "first_name", "email_key")


def _latest_delivery_to(address: Any) -> QuerySet[Recipient]:
    return Recipient.objects.filter(address__iexact=address).order_by("-updated_at", "-id")


def _refusal_of(address: Any) -> QuerySet[Recipient]:
    """The latest delivery to `address` if its server said the address does not exist: a
    permanent failure with an RFC 3463 addressing status, 5.1.x (5.1.1 bad mailbox, 5.1.10
    null MX). A later successful delivery clears it."""
    latest = _latest_delivery_to(address).values("pk")[:1]
    return Recipient.objects.filter(
        pk=Subquery(latest),
        status=RecipientStatus.FAILED,
        last_enhanced_code__startswith="5.1.",
    )


def contact_address_refusal(*, contact: Contact) -> str:
    """What the contact's own mail server said of its address, in a sentence with what to
    do, when the last email to it failed because the address does not exist; else ""."""
    refusal = _refusal_of(contact.email).select_related("message").first()
    if refusal is None:
        return ""
    return explain_failure(
        stage=Stage.RCPT,
        classification=Classification.PERMANENT,
        code=refusal.last_code,
        enhanced=refusal.last_enhanced_code,
        text=refusal.last_text,
        recipient=refusal.address,
    ).sentence


def contact_list_by_ids(*, ids: Iterable[int]) -> QuerySet[Contact]:
    """The contacts with these ids (those that still exist), for a selection on the list."""
    return (
        Contact.objects.filter(pk__in=list(ids))
        .select_related("organization")
        .prefetch_related("tags")
        .order_by("last_name", "first_name", "email_key")
    )


def contact_get(*, pk: int) -> Contact:
    try:
        return Contact.objects.select_related("organization", "created_by").get(pk=pk)
    except Contact.DoesNotExist:
        raise NotFoundError(f"There is no contact #{pk}; it may have been deleted.") from None


def contact_get_by_email(*, email: str) -> Contact | None:
    """The contact with this address, compared without regard to case; None if none."""
    return (
        Contact.objects.select_related("organization")
        .filter(email_key=contact_email_key(email.strip()))
        .first()
    )


def contact_count() -> int:
    return Contact.objects.count()


def organization_list(*, search: str = "") -> QuerySet[Organization]:
    """Companies by name, each with `contact_count`."""
    organizations = Organization.objects.annotate(contact_count=Count("contacts"))
    for word in search.split():
        organizations = organizations.filter(name__icontains=word)
    return organizations.order_by("name", "id")


def organization_get(*, pk: int) -> Organization:
    try:
        return Organization.objects.get(pk=pk)
    except Organization.DoesNotExist:
        raise NotFoundError(f"There is no company #{pk}; it may have been deleted.") from None


def organization_names() -> list[str]:
    return list(Organization.objects.order_by("name").values_list("name", flat=True))


def tag_names() -> list[str]:
    return list(Tag.objects.order_by("name").values_list("name", flat=True))


def import_job_list(*, user: User, limit: int) -> QuerySet[ImportJob]:
    """The latest imports a user may see: administrators see everyone's."""
    jobs = ImportJob.objects.select_related("created_by").defer("report", "preview")
    if not user.is_administrator:
        jobs = jobs.filter(created_by=user)
    return jobs.order_by("-created_at", "-id")[:limit]


def import_job_get(*, pk: int, user: User) -> ImportJob:
    """A job its creator or an administrator may see; others get NotFoundError, so the
    job's existence is not revealed."""
    try:
        job = ImportJob.objects.get(pk=pk)
    except ImportJob.DoesNotExist:
        raise NotFoundError(f"There is no import #{pk}.") from None
    if not user.is_administrator and job.created_by_id != user.pk:
        raise NotFoundError(f"There is no import #{pk}.")
    return job


# The contact page lists the newest messages; older ones stay in the outbox (filter "To").
# 200 rows keep the page fast even for a contact written to every day for most of a year.
HISTORY_LIMIT = 200


def contact_history(*, contact: Contact, user: User) -> list[dict[str, Any]]:
    """Every message sent to the contact's address (any case), newest first, as the rows
    of web/contacts/_history.html: the recipient's own status, and a link to the message
    for those who may see it (administrators; others their own)."""
    rows = (
        Recipient.objects.filter(address__iexact=contact.email)
        .select_related("message", "message__sender_user")
        # The message's bytes (up to the message size limit) are not needed here.
        .defer("message__raw", "message__fallback_raw", "message__bulk_data")
        .order_by("-message__created_at", "-message_id", "-id")[:HISTORY_LIMIT]
    )
    recipients = list(rows)
    # Bounces and complaints that came back after the relay took the message, in words.
    later = late_reports_in_words(
        message_pks=[recipient.message_id for recipient in recipients], address=contact.email
    )
    history = []
    for recipient in recipients:
        message = recipient.message
        sender = message.sender_user.name if message.sender_user else message.from_header
        history.append(
            {
                "at": message.created_at,
                "subject": message.subject,
                "status": recipient.status,
                "status_label": recipient.get_status_display(),
                "sender": sender,
                "kind": recipient.get_kind_display(),
                "later": later.get(message.pk, ""),
                "url": (
                    reverse("outbox_message", args=[message.pk])
                    if message_can_act(user=user, message=message)
                    else None
                ),
            }
        )
    return history
