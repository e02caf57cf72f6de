"""Poll the bounce mailbox: read each new mail once, process it, put it aside.

The worker (postroom.runtime.background) runs `run_bounce_poller`, which polls every
`poll_minutes` while the mailbox is enabled; the page's "Check now" calls `mailbox_poll` at
once. Either way the poll first takes the mailbox's row under a lease (postroom.queue.lease's
claim): however many workers run, one process polls at a time, and a poller killed mid-way
frees the mailbox when its lease ends.

Each mail is processed (postroom.bounces.processing) and remembered as read (SeenMail) in one
transaction, then put aside (moved to the processed folder over IMAP; over POP3 the memory is
all there is, as Postroom never deletes). A move that fails leaves the mail remembered, so the
next poll moves it without reading it twice. A mail whose processing raises stays where it is,
remembered with its error, and the poll goes on with the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from postroom.bounces.mailbox import MailboxSession, WaitingMail, mailbox_open
from postroom.bounces.models import BounceMailbox, ReportKind, SeenMail
from postroom.bounces.processing import bounce_mail_process
from postroom.bounces.selectors import bounce_mailbox_get
from postroom.bounces.services import mailbox_settings
from postroom.core.errors import PostroomError
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.lease import claim_token_new, lease_claim

logger = logging.getLogger(__name__)

# A poll holds the mailbox this long at most: every network step times out after 30 s
# (mailbox.TIMEOUT_SECONDS) and a poll reads at most MAILS_PER_POLL mails, so a live poll
# ends well within it; a dead poller's lease runs out after it.
LEASE = dt.timedelta(minutes=15)
# Mails read in one poll: a mailbox with a backlog is emptied over several polls, and each
# poll's status shows progress.
MAILS_PER_POLL = 300
# Keys forgotten per DELETE: under SQLite's old limit of 999 parameters in one statement.
FORGET_PAGE = 500
# How often the worker looks whether a poll is due (and at changed settings).
WAKE_SECONDS = 30.0


@dataclass
class PollResult:
    """What one poll did; `message` is what the page shows."""

    is_ok: bool = True
    read: int = 0
    failed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    error: str = ""
    is_busy: bool = False
    more_waiting: bool = False

    @property
    def message(self) -> str:
        if self.is_busy:
            return "Another Postroom process is reading the mailbox right now; look again soon."
        if self.error:
            return self.error
        if not self.read and not self.failed:
            return "No new mail."
        parts = [f"Read {self.read} new mail{'s' if self.read != 1 else ''}"]
        if self.kinds:
            labels = dict(ReportKind.choices)
            parts[0] += ": " + ", ".join(
                f"{count} {labels.get(kind, kind).lower()}"
                for kind, count in sorted(self.kinds.items())
            )
        if self.failed:
            parts.append(
                f"{self.failed} mail{'s' if self.failed != 1 else ''} could not be processed "
                "and stay in the mailbox (see below)"
            )
        if self.more_waiting:
            parts.append("more mail waits and is read at the next poll")
        return ". ".join(parts) + "."


def mailbox_poll_due(
    *, runner: str, now: dt.datetime | None = None, stop: threading.Event | None = None
) -> PollResult | None:
    """Poll if the mailbox is enabled and its time has come; None when nothing was due."""
    now = now or timezone.now()
    mailbox = BounceMailbox.objects.filter(pk=1, is_enabled=True).first()
    if mailbox is None:
        return None
    if (
        mailbox.last_poll_at
        and mailbox.last_poll_at + dt.timedelta(minutes=mailbox.poll_minutes) > now
    ):
        return None
    return mailbox_poll(runner=runner, now=now, stop=stop)


def mailbox_poll(
    *, runner: str, now: dt.datetime | None = None, stop: threading.Event | None = None
) -> PollResult:
    """Poll the mailbox now under its lease, and record the outcome on it. `stop` ends the
    poll after the mail being read (the worker is stopping); the rest waits for the next."""
    now = now or timezone.now()
    bounce_mailbox_get()  # the row exists before it is claimed
    token = claim_token_new()
    free = Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now)
    with transaction.atomic():
        claimed = lease_claim(
            BounceMailbox.objects.filter(Q(pk=1) & free),
            limit=1,
            recheck=free,
            claim={
                "poll_claim_token": token,
                "poll_claimed_by": runner[:200],
                "poll_lease_until": now + LEASE,
            },
        )
    if not claimed:
        return PollResult(is_ok=True, is_busy=True)
    try:
        result = _poll(BounceMailbox.objects.get(pk=1), stop=stop or threading.Event())
    finally:
        mine = BounceMailbox.objects.filter(pk=1, poll_claim_token=token)
        mine.update(poll_claim_token="", poll_claimed_by="", poll_lease_until=None)
    BounceMailbox.objects.filter(pk=1).update(
        last_poll_at=timezone.now(), last_poll_ok=result.is_ok, last_poll_message=result.message
    )
    return result


def _poll(mailbox: BounceMailbox, *, stop: threading.Event) -> PollResult:
    result = PollResult()
    try:
        settings = mailbox_settings(mailbox)
        with mailbox_open(settings) as session:
            waiting = session.waiting()
            seen = _seen(prefix=f"{mailbox.protocol} ", present={m.key for m in waiting})
            for mail in waiting:
                if mail.key in seen:
                    if not seen[mail.key]:  # read before, but the move failed
                        session.put_aside(mail)
                    continue
                if result.read + result.failed >= MAILS_PER_POLL or stop.is_set():
                    result.more_waiting = True
                    break
                _read_one(session, mail, result)
    except PostroomError as error:  # MailboxError, a missing password, a refused OAuth token
        logger.warning("Reading the bounce mailbox failed: %s", error.message)
        result.is_ok, result.error = False, error.message
    except Exception as error:  # a bug: recorded on the page too, not only in the log
        logger.exception("Reading the bounce mailbox failed")
        result.is_ok = False
        result.error = (
            f"Reading the mailbox failed unexpectedly ({type(error).__name__}); the log has "
            "the details."
        )
    return result


def _read_one(box: MailboxSession, mail: WaitingMail, result: PollResult) -> None:
    raw = box.fetch(mail)  # a MailboxError here ends the poll: the connection is gone
    try:
        with transaction.atomic():
            report = bounce_mail_process(raw, mailbox_ref=mail.ref)
            SeenMail.objects.create(uidl=mail.key, seen_at=timezone.now())
    except Exception as error:  # one bad mail must not stop the others
        logger.exception("The bounce mailbox's mail %s could not be processed", mail.ref)
        text = f"{type(error).__name__}: {error}"[:2000]
        SeenMail.objects.update_or_create(
            uidl=mail.key, defaults={"seen_at": timezone.now(), "error": f"{mail.ref}: {text}"}
        )
        result.failed += 1
        return
    result.read += 1
    result.kinds[report.kind] = result.kinds.get(report.kind, 0) + 1
    box.put_aside(mail)


def _seen(*, prefix: str, present: set[str]) -> dict[str, str]:
    """The mails read before (key -> error, blank when processed) among those `present`.

    The others are forgotten: moved, or deleted by a person, their keys never come back (a
    POP3 UIDL, an IMAP UID is not reused), so the memory stays as small as the mailbox. Read
    whole and deleted in pages: a POP3 mailbox nobody empties has thousands of mails, more
    than one SQL statement may name."""
    remembered = dict(SeenMail.objects.filter(uidl__startswith=prefix).values_list("uidl", "error"))
    gone = [key for key in remembered if key not in present]
    for start in range(0, len(gone), FORGET_PAGE):
        SeenMail.objects.filter(uidl__in=gone[start : start + FORGET_PAGE]).delete()
    return {key: error for key, error in remembered.items() if key in present}


async def run_bounce_poller(*, name: str, stop: asyncio.Event) -> None:
    """Poll the bounce mailbox whenever it is due, until `stop` is set. The clients block, so
    each poll runs on a thread of its own (with its own database connection)."""
    db = DatabaseThread("postroom-bounces")
    stopping = threading.Event()  # what the poll's thread sees of `stop`
    watch = asyncio.create_task(_relay_stop(stop, stopping))
    try:
        while not stop.is_set():
            try:
                await db.run(mailbox_poll_due, runner=name, stop=stopping)
            except Exception:  # the database is away (restarting, locked): try again soon
                logger.exception("Polling the bounce mailbox failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WAKE_SECONDS)
    finally:
        watch.cancel()
        await db.close()


async def _relay_stop(stop: asyncio.Event, stopping: threading.Event) -> None:
    await stop.wait()
    stopping.set()
