"""The email of a run: the report attached (or linked), and the owner's email when a run
fails. Both go through the outbox (postroom.outbox.enqueue), from the company's address.

Subject and body use the one merge language (postroom.mail.merge) with the fields
`report.name`, `report.description`, `run.period`, `run.rows`, `run.date` and
`run.is_truncated`; what the run adds (the attachment's name or the link, a truncation or a
late run) is written under the body by Postroom.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from postroom.campaigns.links import public_url
from postroom.company.selectors import company_get
from postroom.core.errors import ConfigurationError, PostroomError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.merge import merge_compile
from postroom.mail.message import Attachment, OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Lane, Message, Source
from postroom.reports.models import ReportRun, Schedule

logger = logging.getLogger(__name__)

MERGE_ROOTS = ("report", "run")
MERGE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "report": ("name", "description"),
    "run": ("period", "rows", "date", "is_truncated"),
}
DEFAULT_SUBJECT = "{{ report.name }}: {{ run.period }}"
DEFAULT_BODY = "Hello,\n\nhere is {{ report.name }} for {{ run.period }}: {{ run.rows }} rows.\n"


@dataclass(frozen=True)
class Document:
    filename: str
    content_type: str
    data: bytes


def merge_context(
    *, report_name: str, description: str, period: str, rows: int, date: str, is_truncated: bool
) -> dict[str, Any]:
    return {
        "report": {"name": report_name, "description": description},
        "run": {"period": period, "rows": rows, "date": date, "is_truncated": is_truncated},
    }


def letter_render(*, subject: str, body: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body filled in; TemplateError (a ValidationError) naming the part."""
    fields = {name: list(values) for name, values in MERGE_FIELDS.items()}
    compiled_subject = merge_compile(subject, part="subject", roots=MERGE_ROOTS, fields=fields)
    compiled_body = merge_compile(body, part="text", roots=MERGE_ROOTS, fields=fields, field="body")
    return compiled_subject.render(context), compiled_body.render(context)


def letter_check(*, subject: str, body: str) -> None:
    """Check a schedule's subject and body by filling them with sample values."""
    sample = merge_context(
        report_name="Sales",
        description="",
        period="1–31 May 2026",
        rows=10,
        date="2026-06-01",
        is_truncated=False,
    )
    letter_render(subject=subject, body=body, context=sample)


def company_sender() -> Address:
    company = company_get()
    if not company.sender_email:
        raise ConfigurationError(
            "The company has no email address to send reports from: an administrator sets it "
            "under Company > SMTP Server Information."
        )
    address = parse_address(company.sender_email, label="Company address")
    return Address(company.sender_name or company.name, address.addr_spec)


def schedule_recipients(schedule: Schedule) -> list[Address]:
    """Everyone the schedule mails, once each: users and contacts that are active and have
    an address, and the free addresses."""
    found: dict[str, Address] = {}
    for user in schedule.recipient_users.filter(is_active=True).exclude(email=""):
        found.setdefault(user.email.lower(), Address(user.name, user.email))
    for contact in schedule.recipient_contacts.filter(is_active=True):
        found.setdefault(contact.email.lower(), Address(contact.name, contact.email))
    for text in schedule.recipient_addresses:
        address = parse_address(text, label="Recipient", field="recipient_addresses")
        found.setdefault(address.addr_spec.lower(), address)
    return list(found.values())


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 100 * 1024 else f"{max(size // 1024, 1)} KB"


def report_mail(
    *,
    run: ReportRun,
    document: Document,
    context: Mapping[str, Any],
    link: str | None,
    notes: list[str],
) -> Message:
    """Queue the run's email: the file attached, or `link` to it. Raises PostroomError
    (no recipient, no company address, a bad template) before anything is queued."""
    schedule = run.schedule
    recipients = schedule_recipients(schedule)
    if not recipients:
        raise PostroomError(
            "The schedule has no recipient with an email address: add users, contacts or "
            "addresses to it."
        )
    subject, body = letter_render(subject=schedule.subject, body=schedule.body, context=context)
    size = _megabytes(len(document.data))
    if link is None:
        added = [f"The report is attached: {document.filename} ({size})."]
    else:
        added = [
            f"The report ({document.filename}, {size}) is too large to attach. Download it "
            f"within the next days from:\n{link}"
        ]
    text = "\n\n".join(filter(None, [body.rstrip(), *added, *notes])) + "\n"
    email = OutgoingEmail(
        from_=company_sender(),
        to=recipients,
        subject=subject,
        text=text,
        attachments=[]
        if link
        else [Attachment(document.filename, document.content_type, document.data)],
    )
    return message_enqueue(email=email, source=Source.REPORT, lane=Lane.BULK)


def failure_mail(*, run: ReportRun, reason: str) -> None:
    """Tell the report's owner (and whoever set up the schedule) that a run failed. Never
    raises: without a company address or an owner's address, the log says it."""
    people = {
        user.pk: user
        for user in (run.report.owner, run.schedule.created_by)
        if user is not None and user.is_active and user.email
    }
    if not people:
        logger.warning(
            "Report run %s failed and nobody with an address owns it: %s", run.pk, reason
        )
        return
    try:
        page = public_url() + reverse("report_schedule_detail", args=[run.schedule_id])
    except ConfigurationError:
        page = ""
    text = (
        f"The report “{run.report.name}” could not be sent (run {run.pk}, for "
        f"{run.scheduled_for:%Y-%m-%d %H:%M} UTC):\n\n{reason}\n\nNothing was sent to its "
        "recipients." + (f" The schedule and its history:\n{page}\n" if page else "\n")
    )
    try:
        email = OutgoingEmail(
            from_=company_sender(),
            to=[Address(user.name, user.email) for user in people.values()],
            subject=f"Postroom: the report “{run.report.name}” failed",
            text=text,
        )
        message_enqueue(email=email, source=Source.REPORT)
    except PostroomError as error:
        # A known condition with its own words: no traceback to show.
        message = "Could not queue the failure email of report run %s: %s"
        logger.error(message, run.pk, error.message)  # noqa: TRY400
