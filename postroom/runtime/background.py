"""The background work of a Postroom process: the outbox worker and its companions.

`postroom worker` runs this (and `postroom run` starts a `postroom worker` beside its web server).
The companions (the webhook dispatcher, the report scheduler, the pause alerts, the bounce
mailbox's poller) are started here, not by the outbox, so that the outbox knows nothing of what
is fed by its events; and the job runner learns here which kinds of job there are (CSV and
list imports, campaign expansion, report runs: JOB_KINDS), all run by the same runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from django.conf import settings

from postroom.bounces.polling import run_bounce_poller
from postroom.campaigns.expansion import CAMPAIGN_JOB_KINDS
from postroom.company.smtp import oauth_mailboxes_in_use
from postroom.contacts.import_runs import IMPORT_JOB_KINDS
from postroom.oauth.tokens import sign_ins_watch
from postroom.outbox.pauses import server_pause_alerts_send
from postroom.outbox.worker import WorkerOptions, run_worker
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.jobs import JobKind
from postroom.queue.runner import run_job_runner
from postroom.reports.runs import REPORT_JOB_KINDS
from postroom.reports.scheduler import run_report_scheduler
from postroom.webhooks.dispatcher import run_webhook_dispatcher

JOB_KINDS: dict[str, JobKind] = {**IMPORT_JOB_KINDS, **CAMPAIGN_JOB_KINDS, **REPORT_JOB_KINDS}


# How often a lasting pause and the OAuth sign-ins are looked at; an alert comes at most this
# late.
WATCH_SECONDS = 60


async def run_background(options: WorkerOptions, *, stop: asyncio.Event) -> None:
    """Deliver the outbox and the webhook events its state changes write, run the jobs, start
    due report schedules, and alert the administrators of a lasting pause, until `stop` is
    set."""
    companions_stop = asyncio.Event()
    webhooks = asyncio.create_task(run_webhook_dispatcher(stop=companions_stop), name="webhooks")
    jobs = asyncio.create_task(
        run_job_runner(JOB_KINDS, name=options.name, stop=companions_stop), name="jobs"
    )
    watch = asyncio.create_task(_watch_sending(stop=companions_stop), name="watch")
    reports = asyncio.create_task(
        run_report_scheduler(name=options.name, stop=companions_stop), name="reports"
    )
    bounces = asyncio.create_task(
        run_bounce_poller(name=options.name, stop=companions_stop), name="bounces"
    )
    try:
        await run_worker(options, stop=stop)
    finally:
        companions_stop.set()
        # Requests in flight finish (10 s at most each) and are recorded; running jobs stop
        # at their next step and go back to the queue.
        # A bounce poll under way stops after its current mail.
        await asyncio.gather(webhooks, jobs, watch, reports, bounces)


async def _watch_sending(*, stop: asyncio.Event) -> None:
    """Alert of lasting pauses; renew OAuth tokens ahead of expiry, so a refresh that fails
    is seen (and told) before mail needs it."""
    after = dt.timedelta(minutes=settings.POSTROOM_PAUSE_ALERT_MINUTES)
    db = DatabaseThread("postroom-watch")
    try:
        while not stop.is_set():
            await db.run(server_pause_alerts_send, after=after)
            await db.run(_sign_ins_watch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)
    finally:
        await db.close()


def _sign_ins_watch() -> None:
    sign_ins_watch(mailboxes=oauth_mailboxes_in_use())
