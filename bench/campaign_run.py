"""A campaign's full path, measured: Send -> pre-flight -> expansion -> delivery -> finished.

    python -m bench.campaign_run --port SINK_PORT --recipients N [--concurrency 32]

Run by bench.campaign in its own process, because it sets Django up on a database of its own
(a fresh SQLite file in a temporary POSTROOM_DATA_DIR), as bench.postroom_run does for the
plain outbox worker; the worker settings are the same (32 connections, batches of 500).

1. N consenting contacts in one list (written in bulk: they are not what is measured), a
   campaign template with merge fields, CSS and an unsubscribe link, a campaign.
2. Start `postroom worker` and send a warm-up batch through it, as the plain run does.
3. The clock: `campaign_send` (what the Send button calls) until the campaign is
   `finished` (every message recorded sent). Meanwhile, every PROBE_SECONDS, a person's
   email (`message_enqueue`, transactional, as Contact Email queues it) is timed from
   enqueue to `sent`.
4. Check every message is sent once and the sink counted them (the caller compares).
The last line of output is a JSON object: timings, the worker's CPU and RSS, the probes'
latencies, notes, and `error` when something broke.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import corpus
from bench.measure import proc_cpu_seconds, proc_memory_mb
from bench.postroom_run import (
    BenchError,
    _check_alive,
    _database,
    _start_worker,
    _stop_workers,
    _wait_ready,
    _worker_logs,
)

POLL_SECONDS = 0.02  # a probe's latency is known to 20 ms: 2% of the 1 s target
PROBE_SECONDS = 0.5  # a person's email twice a second during the campaign
STALL_SECONDS = 60  # the pre-flight of 100,000 recipients sends nothing for a few seconds
CONTACT_BATCH = 2000
# The plain worker's message (bench.corpus: about 2 KB of text), greeting each contact by
# name and ending with the unsubscribe link, so the two runs differ by the campaign alone.
TEMPLATE_TEXT = (
    "Dear {{ contact.first_name }},\n\n"
    + corpus.BODY.split("\n\n", 1)[1]
    + "\nUnsubscribe: {{ unsubscribe.url }}\n"
)
# With --html: a letter with CSS inlined and the text part generated from it.
TEMPLATE_HTML = (
    "<html><head><style>p { font-family: Arial, sans-serif; color: #222222; } "
    ".total { font-weight: bold; }</style></head><body>"
    "<p>Dear {{ contact.first_name }},</p>"
    "<p>" + corpus.BODY.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
    '<p class="total">Kind regards, {{ company.name }}</p>'
    '<p><a href="{{ unsubscribe.url }}">Unsubscribe</a></p></body></html>'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--html", action="store_true", help="an HTML letter (text generated)")
    parser.add_argument(
        "--profile", metavar="PY_SPY", help="record the worker with this py-spy during the campaign"
    )
    args = parser.parse_args()
    args.workers = 1
    result: dict[str, Any] = {"recipients": args.recipients, "notes": []}
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-campaign-"))
    try:
        with _database(False, data_dir):
            _run(args, data_dir, result)
    except BenchError as error:
        result["error"] = str(error)
    except Exception as error:  # noqa: BLE001 - reported to the caller with its traceback
        result["error"] = f"{error!r}\n{traceback.format_exc()}"
    finally:
        if args.keep or result.get("error"):
            result["notes"].append(f"data folder and worker logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))


def _setup(args: argparse.Namespace) -> Any:
    """The company pointed at the sink, N contacts in a list, a template, a campaign."""
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from postroom.audiences.services import list_create, list_members_insert
    from postroom.campaigns.campaign_templates import TemplateFields, campaign_template_create
    from postroom.campaigns.services import CampaignFields, campaign_create
    from postroom.company.services import SmtpSettingsInput, company_smtp_update
    from postroom.contacts.models import Contact

    call_command("migrate", verbosity=0, interactive=False)
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host=args.host,
            smtp_port=args.port,
            smtp_secure_required=False,
            smtp_tls_mode="none",
            sender_email=corpus.SENDER,
            sender_name=corpus.SENDER_NAME,
            smtp_max_connections=args.concurrency,
            smtp_rate_per_second=0,
            smtp_rate_per_minute=0,
            smtp_rate_per_day=0,
        ),
    )
    contact_list = list_create(actor=None, name="Everyone")
    now = timezone.now()
    for start in range(0, args.recipients, CONTACT_BATCH):
        with transaction.atomic():
            contacts = Contact.objects.bulk_create(
                Contact(
                    email=corpus.recipient(n),
                    email_key=corpus.recipient(n),
                    first_name=f"Customer{n}",
                    marketing_consent=True,
                    marketing_consent_at=now,
                )
                for n in range(start, min(start + CONTACT_BATCH, args.recipients))
            )
            list_members_insert(contact_list, [contact.pk for contact in contacts])
    template = campaign_template_create(
        actor=None,
        fields=TemplateFields(name="Invoice news", html=TEMPLATE_HTML)
        if args.html
        else TemplateFields(name="Invoice news", text=TEMPLATE_TEXT),
    )
    return campaign_create(
        actor=None,
        fields=CampaignFields(
            name="Benchmark",
            subject="News for {{ contact.first_name }}",
            template_id=template.pk,
            list_ids=(contact_list.pk,),
        ),
    )


def _run(args: argparse.Namespace, data_dir: Path, result: dict[str, Any]) -> None:
    import django

    django.setup()
    from django.db import connection

    from postroom.campaigns.services import campaign_send

    campaign = _setup(args)
    connection.close()
    workers = [_start_worker(args, data_dir, 1)]
    try:
        _wait_ready(workers, data_dir, postgres=False)
        for index in range(args.warmup):
            _person_email(1_000_000 + index)
        _wait_sent(lambda: _count_sent() >= args.warmup, workers, what="the warm-up")

        worker_cpu = proc_cpu_seconds(workers[0].pid)
        profiler = _profiler(args.profile, workers[0].pid, data_dir)
        started = time.perf_counter()
        campaign_send(actor=None, campaign=campaign)
        samples, latencies = _follow(campaign.pk, workers, result)
        result["send_to_finished_seconds"] = time.perf_counter() - started
        result["worker_cpu_seconds"] = proc_cpu_seconds(workers[0].pid) - worker_cpu
        result["worker_peak_rss_mb"] = proc_memory_mb(workers[0].pid, "VmHWM")
        result["rss_samples"] = samples
        result["latencies"] = latencies
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
            result["notes"].append(f"py-spy profile in {data_dir / 'profile.txt'}")
    finally:
        codes = _stop_workers(workers)
    _check_final(campaign.pk, args.recipients)
    if any(code != 0 for code in codes):
        raise BenchError(f"the worker exited with {codes} after SIGTERM\n" + _worker_logs(data_dir))


def _profiler(py_spy: str | None, pid: int, data_dir: Path) -> subprocess.Popen[bytes] | None:
    if not py_spy:
        return None
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
         "--output", str(data_dir / "profile.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _follow(
    campaign_pk: int, workers: list[Any], result: dict[str, Any]
) -> tuple[list[tuple[int, float]], list[float]]:
    """Until the campaign is finished: probe with a person's email, sample the worker's RSS,
    note when the pre-flight and the expansion ended."""
    from postroom.campaigns.models import Campaign, CampaignStatus
    from postroom.campaigns.monitor import campaign_refresh

    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    started = time.perf_counter()
    last_sent, last_progress, probe_at, index = -1, time.monotonic(), 0.0, 0
    while True:
        campaign = campaign_refresh(Campaign.objects.get(pk=campaign_pk))
        if campaign.status == CampaignStatus.FINISHED:
            return samples, latencies
        if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
            raise BenchError(
                f"the campaign is {campaign.status}: {campaign.paused_reason} "
                f"{campaign.preflight_report[:3]}\n" + _worker_logs(Path(_data_dir()))
            )
        for name, done in (
            ("preflight", campaign.is_preflight_done),
            ("expansion", campaign.is_expanded),
        ):
            if done and f"{name}_seconds" not in result:
                result[f"{name}_seconds"] = time.perf_counter() - started
        sent = _count_sent()
        if sent != last_sent:
            last_sent, last_progress = sent, time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            raise BenchError("nothing sent for a minute\n" + _worker_logs(Path(_data_dir())))
        if time.monotonic() >= probe_at and campaign.is_preflight_done:
            latencies.append(_probe(1_100_000 + index))
            index += 1
            probe_at = time.monotonic() + PROBE_SECONDS
            _check_alive(workers)
            samples.append((sent, proc_memory_mb(workers[0].pid, "VmRSS")))
        time.sleep(0.1)


def _data_dir() -> str:
    import os

    return os.environ["POSTROOM_DATA_DIR"]


def _person_email(index: int) -> int:
    from postroom.mail.addresses import Address, parse_address
    from postroom.mail.message import OutgoingEmail
    from postroom.outbox.enqueue import message_enqueue
    from postroom.outbox.models import Lane, Source

    message = message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(f"Alice Smith <{corpus.SENDER}>"),
            to=[Address("", corpus.recipient(index))],
            subject="A quick question about your order",
            text="Hello, could you call me back? Alice",
        ),
        source=Source.COMPOSE,
        lane=Lane.TRANSACTIONAL,
    )
    return int(message.pk)


def _probe(index: int) -> float:
    """Seconds from queuing a person's email to its being recorded as sent."""
    from postroom.outbox.models import Message, MessageStatus

    started = time.perf_counter()
    pk = _person_email(index)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Message.objects.filter(pk=pk, status=MessageStatus.SENT).exists():
            return time.perf_counter() - started
        time.sleep(POLL_SECONDS)
    raise BenchError("a person's email was not sent within 30 s during the campaign")


def _count_sent() -> int:
    from postroom.outbox.models import Message, MessageStatus

    return Message.objects.filter(status=MessageStatus.SENT).count()


def _wait_sent(condition: Any, workers: list[Any], *, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(
                f"{what} did not finish in 2 minutes\n" + _worker_logs(Path(_data_dir()))
            )
        _check_alive(workers)
        time.sleep(0.05)


def _check_final(campaign_pk: int, recipients: int) -> None:
    from postroom.campaigns.models import Campaign
    from postroom.campaigns.selectors import campaign_stats

    stats = campaign_stats(Campaign.objects.get(pk=campaign_pk))
    if not stats.sent == stats.written == recipients:
        raise BenchError(
            f"final states: {stats.written:,} written, {stats.sent:,} sent; expected "
            f"{recipients:,} each"
        )


if __name__ == "__main__":
    main()
