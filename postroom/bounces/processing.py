"""Process one mail from the bounce mailbox: say what it is, match it to the message and
recipient it is about, and apply it — in one transaction with its BounceReport.

Matching, most trusted first:

1. the tagged return path (postroom.mail.verp): the address the bounce was sent to names
   the message, with an HMAC nobody without the secret key can make;
2. the Message-ID of the returned original (RFC 3464's returned message or headers, RFC
   5965's original) against the outbox's Message-IDs.

The recipient is then the report's Final-Recipient or Original-Recipient (a complaint's
Original-Rcpt-To) among that message's recipients, whatever the case; a message with one
recipient needs no more (a forwarded address, a redacted complaint).

Only mail Postroom sent may change its lists: a bounce that matches none of its messages is
recorded and changes nothing, even when it names a failing address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from postroom.bounces.models import BounceMailbox, BounceReport, ReportKind
from postroom.bounces.parsing import Kind, ParsedMail, RecipientReport, mail_parse
from postroom.company.selectors import company_get
from postroom.mail.verp import return_path_message
from postroom.outbox import late_outcomes
from postroom.outbox.late_outcomes import LateReport
from postroom.outbox.models import Message, Recipient
from postroom.outbox.routing import return_path_keys

BY_TAG = "tagged return path"
BY_MESSAGE_ID = "Message-ID"


@dataclass(frozen=True)
class Match:
    message: Message | None
    matched_by: str = ""
    note: str = ""  # why it did not match, when that is worth saying


def bounce_mail_process(raw: bytes, *, mailbox_ref: str) -> BounceReport:
    """Read one mail's bytes, record its BounceReport and apply it in one transaction;
    return the report. A mail processed before (same Message-ID) returns its first report
    and changes nothing again."""
    parsed = mail_parse(raw)
    now = timezone.now()
    with transaction.atomic():
        if parsed.report_message_id:
            earlier = BounceReport.objects.filter(report_message_id=parsed.report_message_id)
            if (first := earlier.order_by("id").first()) is not None:
                return first
        match = mail_match(parsed)
        concerned = recipients_concerned(parsed, match.message)
        about = concerned[0] if concerned else None
        report = BounceReport(
            received_at=now,
            kind=parsed.kind,
            report_message_id=parsed.report_message_id,
            mailbox_ref=mailbox_ref[:200],
            subject=parsed.subject,
            message=match.message,
            recipient=(about.address if about else _first_address(parsed))[:320],
            status=about.status if about else _first_status(parsed),
            diagnostic=about.diagnostic if about else _first_diagnostic(parsed),
            matched_by=match.matched_by,
        )
        report.action = _apply(parsed, match, concerned, now=now)
        report.save()
    return report


def mail_match(parsed: ParsedMail) -> Match:
    """The message of Postroom's a parsed mail is about, if any, and how it was found."""
    company = company_get()
    notes: list[str] = []
    if company.bounce_address:
        for address in parsed.sent_to:
            message_pk = _tagged_message(address, bounce_address=company.bounce_address)
            if message_pk is None:
                if _looks_tagged(address, company.bounce_address):
                    notes.append(f"The tag of {address} does not verify (forged or too old).")
                continue
            if (message := Message.objects.filter(pk=message_pk).first()) is not None:
                return Match(message, BY_TAG)
    if parsed.original_message_id:
        message = Message.objects.filter(message_id=parsed.original_message_id).first()
        if message is not None:
            return Match(message, BY_MESSAGE_ID, " ".join(notes))
    return Match(None, "", " ".join(notes))


def _tagged_message(address: str, *, bounce_address: str) -> int | None:
    for key in return_path_keys():
        message_pk = return_path_message(address, bounce_address=bounce_address, key=key)
        if message_pk is not None:
            return message_pk
    return None


def _looks_tagged(address: str, bounce_address: str) -> bool:
    local, _, domain = bounce_address.rpartition("@")
    return address.lower().startswith(f"{local.lower()}+") and address.lower().endswith(
        f"@{domain.lower()}"
    )


def recipients_concerned(parsed: ParsedMail, message: Message | None) -> list[RecipientReport]:
    """The reported recipients that are the message's, with its addresses, the worst first
    (a DSN reports every recipient of a message that failed at one server)."""
    if message is None:
        return []
    addresses = list(Recipient.objects.filter(message=message).values_list("address", flat=True))
    keys = {address.lower(): address for address in addresses}
    ranked = sorted(parsed.recipients, key=lambda item: _RANK.get(item.kind, 9))
    found: dict[str, RecipientReport] = {}
    for item in ranked:
        for candidate in (item.address, item.original):
            if candidate and (address := keys.get(candidate.lower())) and address not in found:
                found[address] = _as(item, address)
                break
    if not found and len(addresses) == 1 and (ranked or parsed.kind == Kind.COMPLAINT):
        # One recipient: the report can only be about it (it may name the address the mail
        # was forwarded to, or, in a redacted complaint, none).
        only = addresses[0]
        found[only] = _as(ranked[0], only) if ranked else RecipientReport(only)
    return list(found.values())


_RANK = {Kind.HARD: 0, Kind.SOFT: 1, Kind.DELAY: 2, Kind.OTHER: 3}


def _as(item: RecipientReport, address: str) -> RecipientReport:
    return RecipientReport(address, item.original, item.action, item.status, item.diagnostic)


def _apply(
    parsed: ParsedMail, match: Match, concerned: list[RecipientReport], *, now: dt.datetime
) -> str:
    """Do what the mail asks and say what was done."""
    note = f" {match.note}" if match.note else ""
    if parsed.kind == Kind.OTHER:
        return "Not a bounce or a complaint (an auto-reply, or mail for a person); nothing changed."
    if parsed.kind == Kind.DELAY:
        return "A delay notice: the receiving side is still trying. Nothing changed." + note
    if match.message is None:
        text = "Not matched to a message Postroom sent; nothing changed."
        if parsed.recipients:
            text += (
                f" It is about {_first_address(parsed)}, but only reports on mail Postroom "
                "sent change its lists."
            )
        return text + note
    if not concerned:
        return (
            f"Matched to message {match.message.message_id} by {match.matched_by}, but none "
            "of its recipients is the one reported; nothing changed." + note
        )
    done = [
        _apply_one(parsed, match.message, about, now=now)
        for about in concerned
        if parsed.kind == Kind.COMPLAINT or about.kind in (Kind.HARD, Kind.SOFT)
    ]
    if not done:
        return "None of the message's recipients failed in this report; nothing changed." + note
    return " ".join(done) + note


def _apply_one(
    parsed: ParsedMail, message: Message, about: RecipientReport, *, now: dt.datetime
) -> str:
    report = LateReport(
        message_pk=message.pk,
        address=about.address,
        status=about.status,
        diagnostic=about.diagnostic,
        report_id=parsed.report_message_id,
    )
    if parsed.kind == Kind.COMPLAINT:
        return late_outcomes.recipient_complaint_record(
            report, feedback_type=parsed.feedback_type, now=now
        )
    done = late_outcomes.recipient_bounce_record(report, is_hard=about.kind == Kind.HARD, now=now)
    if about.kind == Kind.SOFT:
        done += " " + _soft_bounces_count(about.address, message.pk, now=now)
    return done


def _soft_bounces_count(address: str, message_pk: int, *, now: dt.datetime) -> str:
    """Count this address's soft bounces in the mailbox's window; suppress at the limit."""
    mailbox = BounceMailbox.objects.filter(pk=1).first() or BounceMailbox()
    since = now - dt.timedelta(days=mailbox.soft_bounce_days)
    earlier = BounceReport.objects.filter(
        recipient__iexact=address, kind=ReportKind.SOFT_BOUNCE, received_at__gte=since
    ).count()
    count = earlier + 1  # this one is saved after
    words = (
        f"{count} soft bounce{'s' if count != 1 else ''} of {address} within "
        f"{mailbox.soft_bounce_days} days (limit {mailbox.soft_bounce_limit})."
    )
    if mailbox.soft_bounce_limit and count >= mailbox.soft_bounce_limit:
        words += " " + late_outcomes.soft_bounces_suppress(
            address=address,
            message_pk=message_pk,
            count=count,
            days=mailbox.soft_bounce_days,
            now=now,
        )
    return words


def _first_address(parsed: ParsedMail) -> str:
    return parsed.recipients[0].address if parsed.recipients else ""


def _first_status(parsed: ParsedMail) -> str:
    return parsed.recipients[0].status if parsed.recipients else ""


def _first_diagnostic(parsed: ParsedMail) -> str:
    return parsed.recipients[0].diagnostic if parsed.recipients else ""
