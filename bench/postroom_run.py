"""Postroom's full path, measured: committed in the outbox -> delivered -> every state recorded.

    python -m bench.postroom_run --port SINK_PORT --messages N [--workers 1] [--postgres]

Run by bench.outbox in its own process, because it sets Django up on a database of its own:
a fresh SQLite file in a temporary POSTROOM_DATA_DIR (or a fresh PostgreSQL database
`postroom_bench`), migrated, with the company's SMTP server pointed at smtp-sink (no TLS).

1. Start `postroom worker` process(es) and send a warm-up batch through them, so the
   connection pool is open and the worker's code is loaded when the clock starts.
2. Pause the server (the worker's own "stop sending to this server" switch), enqueue N
   messages through the real service, and time that alone.
3. Resume the server: the clock starts. Poll the number of `sent` messages until all N are.
4. Check every message and recipient is `sent` with an attempt recorded, and that the sink
   got them (the caller compares its counter).
The last line of output is a JSON object: timings, the workers' CPU and peak RSS, notes, and
`error` (with what was observed) when something broke.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import corpus
from bench.measure import proc_cpu_seconds, proc_memory_mb, self_cpu_seconds

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
POSTGRES_DATABASE = "postroom_bench"
POLL_SECONDS = 0.05  # the finish time is known to 50 ms: 0.5% of a 10-second run
# Enqueue commits this many messages per transaction, as a campaign's enqueue would: one
# durable commit (an fsync) per message would measure the disk, not Postroom.
ENQUEUE_TRANSACTION = 500
# A worker that records nothing for this long is stuck: a healthy one records a batch every
# few milliseconds, and smtp-sink answers at once.
STALL_SECONDS = 15


class BenchError(Exception):
    """Something broke: the message says what was observed."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="connections per worker")
    parser.add_argument("--batch", type=int, default=500, help="messages a worker claims at once")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--enqueue", choices=["bulk", "typed", "raw"], default="bulk")
    parser.add_argument("--timeout", type=float, help="seconds to wait for delivery")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()

    result: dict[str, Any] = {"messages": args.messages, "warmup": args.warmup, "notes": []}
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-"))
    try:
        with _database(args.postgres, data_dir):
            _run(args, data_dir, result)
    except BenchError as error:
        result["error"] = str(error)
    except Exception as error:  # noqa: BLE001 - reported to the caller with its traceback
        import traceback

        result["error"] = f"{error!r}\n{traceback.format_exc()}"
    finally:
        if args.keep or result.get("error"):
            result["notes"].append(f"data folder and worker logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))


@contextmanager
def _database(postgres: bool, data_dir: Path) -> Iterator[None]:
    """Point Django at a fresh database before it is set up; drop a PostgreSQL one after."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "postroom.settings"
    os.environ["POSTROOM_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("POSTROOM_LOG_LEVEL", "WARNING")
    os.environ.pop("POSTROOM_DATABASE_URL", None)
    if not postgres:
        yield
        return
    import psycopg

    def admin(statement: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(statement)

    try:
        admin(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")
        admin(f"CREATE DATABASE {POSTGRES_DATABASE}")
    except psycopg.OperationalError as error:
        raise BenchError(
            f"PostgreSQL at 127.0.0.1:5432 (user postgres) is not reachable: {error}"
        ) from None
    os.environ["POSTROOM_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{POSTGRES_DATABASE}"
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")


def _run(args: argparse.Namespace, data_dir: Path, result: dict[str, Any]) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from postroom.company.services import SmtpSettingsInput, company_smtp_update
    from postroom.company.validation import MAX_CONNECTIONS
    from postroom.outbox.pauses import server_pause, server_resume

    call_command("migrate", verbosity=0, interactive=False)
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host=args.host,
            smtp_port=args.port,
            smtp_secure_required=False,
            smtp_tls_mode="none",  # smtp-sink offers no STARTTLS; TLS would measure OpenSSL
            sender_email=corpus.SENDER,
            sender_name=corpus.SENDER_NAME,
            # The company's cap on connections to its server, raised to what the workers open;
            # no rate limit (0), since measuring is the point.
            smtp_max_connections=min(MAX_CONNECTIONS, args.concurrency * args.workers),
            smtp_rate_per_second=0,
            smtp_rate_per_minute=0,
            smtp_rate_per_day=0,
        ),
    )
    server = f"{args.host}:{args.port}"  # the worker's key for a server (host:port)
    enqueue = _enqueuer(args.enqueue)
    result["enqueue_how"] = enqueue.how
    total = args.warmup + args.messages
    timeout = args.timeout or max(120.0, args.messages / 200)  # 200 msgs/s would be a failure
    connection.close()  # the workers are other processes; nothing shared but the database

    workers = [_start_worker(args, data_dir, number) for number in range(1, args.workers + 1)]
    try:
        _wait_ready(workers, data_dir, postgres=args.postgres)
        # 1. Warm-up: proves the whole path works before N messages are committed.
        enqueue.run(range(1_000_000, 1_000_000 + args.warmup))
        _wait_all_sent(args.warmup, workers, timeout=60, what="the warm-up messages")

        # 2. Enqueue N with sending paused, so the clock can start with all N committed.
        server_pause(server=server, code=None, reason="benchmark: enqueue before sending")
        cpu, started = self_cpu_seconds(), time.perf_counter()
        enqueue.run(range(args.messages))
        result["enqueue_seconds"] = time.perf_counter() - started
        result["enqueue_cpu_seconds"] = self_cpu_seconds() - cpu
        early = _count_sent() - args.warmup
        if early:
            result["notes"].append(
                f"{early:,} messages were sent while the server was paused for the enqueue: "
                "the worker did not honour the pause, so the rate below is flattered"
            )

        # 3. The clock: from "all N committed" (resume) to "all N recorded as sent".
        worker_cpu = sum(proc_cpu_seconds(worker.pid) for worker in workers)
        server_cpu = _postgres_cpu_seconds() if args.postgres else 0.0
        started = time.perf_counter()
        server_resume(server=server)
        finished, rss_samples = _wait_all_sent(
            total, workers, timeout=timeout, what=f"{args.messages:,} messages"
        )
        result["deliver_seconds"] = finished - started
        result["worker_cpu_seconds"] = (
            sum(proc_cpu_seconds(worker.pid) for worker in workers) - worker_cpu
        )
        if args.postgres:
            # SQLite works inside the worker's process; PostgreSQL's work is in its own
            # processes, on the same 2 cores: say how much, or the comparison is unfair.
            server_us = (_postgres_cpu_seconds() - server_cpu) / args.messages * 1e6
            result["notes"].append(
                f"PostgreSQL's own processes used {server_us:,.0f} us of CPU per message "
                "(not in the worker's CPU column)"
            )
        peaks = [proc_memory_mb(worker.pid, "VmHWM") for worker in workers]
        result["worker_peak_rss_mb"] = max(peaks)
        if len(peaks) > 1:
            result["notes"].append(
                "peak RSS per worker: " + ", ".join(f"{peak:.1f} MB" for peak in peaks)
            )
        result["notes"].append(_rss_note(rss_samples))
    finally:
        exit_codes = _stop_workers(workers)
    _check_final_states(total)
    if any(code != 0 for code in exit_codes):
        raise BenchError(
            f"a worker exited with {exit_codes} after SIGTERM (it should stop cleanly, 0)\n"
            + _worker_logs(data_dir)
        )


# --- enqueue ----------------------------------------------------------------------------


class _Enqueuer:
    def __init__(self, how: str, one: Any = None, *, many: Any = None) -> None:
        self.how = how
        self._one = one
        self._many = many

    def run(self, indexes: range) -> None:
        if self._many is not None:
            for start in range(indexes.start, indexes.stop, ENQUEUE_TRANSACTION):
                self._many(range(start, min(start + ENQUEUE_TRANSACTION, indexes.stop)))
            return
        from django.db import transaction

        for start in range(indexes.start, indexes.stop, ENQUEUE_TRANSACTION):
            with transaction.atomic():
                for index in range(start, min(start + ENQUEUE_TRANSACTION, indexes.stop)):
                    self._one(index)


def _enqueuer(how: str) -> _Enqueuer:
    """The service a message enters the outbox through.

    bulk: `bulk_enqueue`, as a campaign does: one stored template, one small row per recipient
    (address validated), bytes rendered by the worker with the fast renderer.
    typed: `message_enqueue` with typed fields, as Contact Email and the API do: addresses
    validated, bytes built by postroom.mail.message, row committed.
    raw: `message_enqueue_raw` with ready bytes, as send_mail and the SMTP listener do.
    """
    from postroom.outbox import enqueue
    from postroom.outbox.models import Lane, Source

    if how == "raw":
        rendered = corpus.PreRendered()

        def one_raw(index: int) -> None:
            enqueue.message_enqueue_raw(
                envelope_from=corpus.SENDER,
                recipients=[corpus.recipient(index)],
                raw=rendered.message(index),
                source=Source.API,
                lane=Lane.TRANSACTIONAL,
            )

        return _Enqueuer(
            f"message_enqueue_raw (ready bytes), {ENQUEUE_TRANSACTION} per transaction", one_raw
        )

    from postroom.mail.addresses import Address, parse_address
    from postroom.mail.message import OutgoingEmail

    sender = parse_address(f"{corpus.SENDER_NAME} <{corpus.SENDER}>")

    if how == "bulk":
        from postroom.outbox.bulk import bulk_enqueue, bulk_template_store

        template = bulk_template_store(
            from_=sender, subject="{{ subject }}", text=corpus.BODY, html=None
        )

        def many(indexes: range) -> None:
            bulk_enqueue(
                template=template,
                recipients=[
                    (Address("", corpus.recipient(index)), {"subject": corpus.subject(index)})
                    for index in indexes
                ],
                source=Source.CAMPAIGN,
            )

        return _Enqueuer(
            f"bulk_enqueue (one template, rendered by the worker), {ENQUEUE_TRANSACTION} per "
            "transaction",
            many=many,
        )

    def one_typed(index: int) -> None:
        enqueue.message_enqueue(
            email=OutgoingEmail(
                from_=sender,
                to=[Address("", corpus.recipient(index))],
                subject=corpus.subject(index),
                text=corpus.BODY,
            ),
            source=Source.API,
            lane=Lane.TRANSACTIONAL,
        )

    return _Enqueuer(
        f"message_enqueue (typed fields, bytes built by postroom.mail.message), "
        f"{ENQUEUE_TRANSACTION} per transaction",
        one_typed,
    )


# --- workers ----------------------------------------------------------------------------


def _start_worker(args: argparse.Namespace, data_dir: Path, number: int) -> subprocess.Popen[bytes]:
    log = (data_dir / f"worker-{number}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable, "-m", "postroom", "worker",
            "--name", f"bench-{number}",
            "--concurrency", str(args.concurrency),
            "--batch", str(args.batch),
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=PROJECT_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _wait_ready(workers: list[subprocess.Popen[bytes]], data_dir: Path, *, postgres: bool) -> None:
    """On SQLite the worker's wake socket appears when it listens; the warm-up proves the rest."""
    if postgres:
        return
    deadline = time.monotonic() + 30  # Django's start takes about a second; 30 on a busy machine
    while time.monotonic() < deadline:
        _check_alive(workers)
        if (data_dir / "worker.wake").exists():
            return
        time.sleep(0.05)
    raise BenchError(
        "the worker did not open its wake socket within 30 s\n" + _worker_logs(data_dir)
    )


def _check_alive(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is not None:
            raise BenchError(
                f"worker {worker.pid} exited with {worker.returncode}\n"
                + _worker_logs(Path(os.environ["POSTROOM_DATA_DIR"]))
            )


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int | None]:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(worker.wait(timeout=30))  # a graceful stop finishes what is in flight
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            codes.append(None)
    return codes


def _worker_logs(data_dir: Path) -> str:
    parts = []
    for log in sorted(data_dir.glob("worker-*.log")):
        lines = log.read_text(errors="replace").strip().splitlines()
        parts.append(f"--- {log.name} (last 40 lines) ---\n" + "\n".join(lines[-40:]))
    return "\n".join(parts) or "(no worker log)"


# --- progress and checks ----------------------------------------------------------------


def _postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL server process now running on this machine."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                total += proc_cpu_seconds(int(comm.parent.name))
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return total


def _count_sent() -> int:
    from postroom.outbox.models import Message, MessageStatus

    return Message.objects.filter(status=MessageStatus.SENT).count()


def _wait_all_sent(
    total: int, workers: list[subprocess.Popen[bytes]], *, timeout: float, what: str
) -> tuple[float, list[tuple[int, float]]]:
    """Poll until `total` messages are sent; return when, and (sent, RSS MB) samples."""
    deadline = time.monotonic() + timeout
    samples: list[tuple[int, float]] = []
    polls = 0
    last_sent, last_progress = -1, time.monotonic()
    while time.monotonic() < deadline:
        sent = _count_sent()
        now = time.perf_counter()
        if sent >= total:
            return now, samples
        if sent != last_sent:
            last_sent, last_progress = sent, time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            raise BenchError(
                f"no message was recorded as sent for {STALL_SECONDS} s while waiting for "
                f"{what} (the worker is alive but stuck): {_status_summary()}\n"
                + _worker_logs(Path(os.environ["POSTROOM_DATA_DIR"]))
            )
        polls += 1
        if polls % 10 == 0:  # twice a second: alive, not stuck, memory
            _check_alive(workers)
            samples.append((sent, max(proc_memory_mb(w.pid, "VmRSS") for w in workers)))
            _check_no_dead_ends()
        time.sleep(POLL_SECONDS)
    raise BenchError(
        f"{what} were not all sent within {timeout:.0f} s: {_status_summary()}\n"
        + _worker_logs(Path(os.environ["POSTROOM_DATA_DIR"]))
    )


def _check_no_dead_ends() -> None:
    """A message that failed or was deferred will not be sent within the run: stop at once."""
    from postroom.outbox.models import Message, MessageStatus

    stuck = Message.objects.exclude(
        status__in=[MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT]
    )
    if stuck.exists():
        raise BenchError(
            f"messages left the happy path: {_status_summary()}\n"
            + _worker_logs(Path(os.environ["POSTROOM_DATA_DIR"]))
        )


def _status_summary() -> str:
    from django.db.models import Count

    from postroom.outbox.models import Attempt, Message

    counts = dict(
        Message.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    summary = ", ".join(f"{status} {n:,}" for status, n in sorted(counts.items()))
    errors = Message.objects.exclude(last_error="").values_list("last_error", flat=True).first()
    attempt = Attempt.objects.exclude(classification="success").order_by("-id").first()
    if errors:
        summary += f"; a last_error: {errors[:500]!r}"
    if attempt:
        summary += (
            f"; latest unsuccessful attempt: stage {attempt.stage}, code {attempt.code}, "
            f"{attempt.classification}: {attempt.text[:500]!r}"
        )
    return summary


def _check_final_states(total: int) -> None:
    """Every state recorded: each message sent, each recipient sent, one attempt each."""
    from postroom.outbox.models import Attempt, Message, MessageStatus, Recipient, RecipientStatus

    messages = Message.objects.count()
    sent = Message.objects.filter(status=MessageStatus.SENT).count()
    recipients_sent = Recipient.objects.filter(status=RecipientStatus.SENT).count()
    attempts = Attempt.objects.filter(classification="success").count()
    if not messages == sent == recipients_sent == attempts == total:
        raise BenchError(
            f"final states: {messages:,} messages, {sent:,} sent, {recipients_sent:,} "
            f"recipients sent, {attempts:,} successful attempts; expected {total:,} each"
        )


def _rss_note(samples: list[tuple[int, float]]) -> str:
    """The worker's RSS as the run went on: flat is the goal."""
    if not samples:
        return "worker RSS not sampled (the run was shorter than half a second)"
    picks = [samples[round(i * (len(samples) - 1) / 4)] for i in range(5)]
    return "worker RSS during the run: " + ", ".join(
        f"{rss:.0f} MB at {sent:,} sent" for sent, rss in picks
    )


if __name__ == "__main__":
    main()
