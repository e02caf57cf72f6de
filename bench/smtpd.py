"""How fast the SMTP listener accepts mail, durably, on SQLite, beside Postfix in the same run.

    .venv/bin/python -m bench.smtpd                 # 20 sessions, 20,000 messages a line
    .venv/bin/python -m bench.smtpd --messages 4000 # a quicker run

A fresh SQLite database in a temporary POSTROOM_DATA_DIR, migrated, with one SMTP credential
(allowed @bench.example, 127.0.0.0/8 without a password, its rate at the maximum) and
`postroom smtpd` as its own process, as in production. Then, each line timed from the first
connection to the last reply:

  smtp-sink    Postfix's smtp-source -s 20 into Postfix's smtp-sink, which keeps nothing: the
               reference, the most this machine's loopback SMTP does
  plain        smtp-source -s 20 into the listener's plain-text port (a listed network, no
               TLS: smtp-source speaks neither TLS nor AUTH), so the same client on both sides
  tls+auth     20 aiosmtplib sessions, each with STARTTLS and AUTH once, then messages one
               after another: the issue's "with STARTTLS and AUTH"
  +worker      tls+auth again while `postroom worker` delivers the outbox to smtp-sink, with a
               person's email queued every half second and timed until it is sent

Every message counts only when the listener answered 250, which it gives after the commit;
the benchmark then checks the database holds exactly that many. It prints each line's rate,
CPU and the targets as met or NOT MET; it exits 0 whatever the figures, 1 if something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.campaign import percentile
from bench.measure import proc_tree_cpu_seconds
from bench.outbox import describe_machine
from bench.postroom_run import PROJECT_DIR, _database
from bench.sink import SmtpSink, free_port, postfix_tool

TARGET_RATE = 1000  # messages a second accepted durably (issue 13, "Targets")
TARGET_PERSON_P99 = 1.0  # seconds for a person's email while ingesting
SESSIONS = 20
SENDER = "erp@bench.example"
PROBE_GIVE_UP_SECONDS = 60


def prepare() -> str:
    """Migrate, make the credential, point the company relay at nothing yet; the password."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from postroom.company.selectors import company_get
    from postroom.smtpd.services import CredentialSettings, credential_create

    call_command("migrate", verbosity=0, interactive=False)
    company = company_get()
    company.sender_email = "office@bench.example"
    company.save()
    _, password = credential_create(
        actor=None,
        username="bench",
        values=CredentialSettings(
            name="bench",
            allowed_senders=("@bench.example",),
            rate_limit_per_minute=100_000,
            max_recipients=10,
            networks_without_auth=("127.0.0.0/8",),
        ),
    )
    connection.close()
    return password


def message_count() -> int:
    from django.db import connection

    from postroom.outbox.models import Message

    try:
        return Message.objects.count()
    finally:
        connection.close()


def smtp_source(port: int, messages: int) -> float:
    argv = [postfix_tool("smtp-source"), "-s", str(SESSIONS), "-m", str(messages)]
    argv += ["-f", SENDER, "-t", "someone@example.org", f"127.0.0.1:{port}"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


async def tls_auth_clients(port: int, password: str, messages: int) -> tuple[float, int]:
    import aiosmtplib

    cert = Path(os.environ["POSTROOM_DATA_DIR"]) / "smtpd-cert.pem"
    context = ssl.create_default_context(cafile=str(cert))
    body = (
        f"From: ERP <{SENDER}>\r\nTo: someone@example.org\r\nSubject: Invoice\r\n\r\n"
        + "Please find your invoice attached.\r\n" * 20
    )
    accepted = 0

    async def session(count: int, first: int) -> None:
        nonlocal accepted
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, tls_context=context)
        await client.connect(start_tls=True)
        await client.login("bench", password)
        for index in range(first, first + count):
            text = body.replace("Subject: Invoice", f"Subject: Invoice {index}")
            await client.sendmail(SENDER, ["someone@example.org"], text)
            accepted += 1
        await client.quit()

    share = messages // SESSIONS
    started = time.perf_counter()
    await asyncio.gather(*(session(share, n * share) for n in range(SESSIONS)))
    return time.perf_counter() - started, accepted


def listener(data_dir: Path, port: int, plain_port: int, processes: int) -> subprocess.Popen[bytes]:
    log = (data_dir / "smtpd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "postroom", "smtpd", "--port", str(port),
         "--plain-port", str(plain_port), "--processes", str(processes)],
        stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"SMTP listener on" not in (data_dir / "smtpd.log").read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((data_dir / "smtpd.log").read_text())
        time.sleep(0.1)
    return process


class PersonProbe(threading.Thread):
    """Queue a person's email every half second; time each until the worker sent it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        from django.db import connection

        from postroom.mail.addresses import parse_address
        from postroom.mail.message import OutgoingEmail
        from postroom.outbox.enqueue import message_enqueue
        from postroom.outbox.models import Message, MessageStatus, Source

        while not self.stop.wait(0.5):
            started = time.perf_counter()
            message = message_enqueue(
                email=OutgoingEmail(
                    from_=parse_address("office@bench.example"),
                    to=[parse_address("person@example.org")],
                    subject="Your quote",
                    text="Here it is.",
                ),
                source=Source.COMPOSE,
            )
            while Message.objects.get(pk=message.pk).status != MessageStatus.SENT:
                if time.perf_counter() - started > PROBE_GIVE_UP_SECONDS:
                    break  # counted as that long: far past the target anyway
                time.sleep(0.01)
            self.seconds.append(time.perf_counter() - started)
        connection.close()


def with_worker(sink: SmtpSink, port: int, password: str, messages: int) -> dict[str, float]:
    from django.db import connection

    from postroom.company.selectors import company_get

    company = company_get()
    company.smtp_host, company.smtp_port = sink.host, sink.port
    company.smtp_secure_required, company.smtp_tls_mode = False, "none"
    company.save()
    connection.close()
    worker = subprocess.Popen(
        [sys.executable, "-m", "postroom", "worker", "--name", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_DIR,
    )  # fmt: skip
    probe = PersonProbe()
    try:
        time.sleep(2)  # the worker up, and through what is queued already
        delivered_before = sink.received()
        probe.start()
        seconds, accepted = asyncio.run(tls_auth_clients(port, password, messages))
        delivered = sink.received() - delivered_before
        probe.stop.set()
        probe.join(30)
    finally:
        worker.terminate()
        worker.wait(30)
    return {
        "seconds": seconds,
        "accepted": accepted,
        "delivered_rate": delivered / seconds,
        "person_p99": percentile(probe.seconds, 0.99) if probe.seconds else float("nan"),
        "probes": len(probe.seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--processes", type=int, default=1, help="postroom smtpd --processes (default 1)"
    )
    args = parser.parse_args(argv)
    n = args.messages - args.messages % SESSIONS
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-smtpd-"))
    print(describe_machine())
    print(f"Listener: postroom smtpd --processes {args.processes}")
    with _database(False, data_dir):
        password = prepare()
        port, plain_port = free_port(), free_port()
        process = listener(data_dir, port, plain_port, args.processes)
        rows: list[tuple[str, float, int, float]] = []
        try:
            with SmtpSink() as sink:
                cpu = sink.cpu_seconds()
                seconds = smtp_source(sink.port, n)
                rows.append(("smtp-source -> smtp-sink", seconds, n, sink.cpu_seconds() - cpu))
                before, cpu = message_count(), proc_tree_cpu_seconds(process.pid)
                seconds = smtp_source(plain_port, n)
                stored = message_count() - before
                rows.append(("smtp-source -> listener (plain)", seconds, stored,
                             proc_tree_cpu_seconds(process.pid) - cpu))  # fmt: skip
                before, cpu = message_count(), proc_tree_cpu_seconds(process.pid)
                seconds, accepted = asyncio.run(tls_auth_clients(port, password, n))
                stored = message_count() - before
                assert stored == accepted, f"{accepted} answered 250, {stored} stored"
                rows.append(("aiosmtplib -> listener (STARTTLS+AUTH)", seconds, stored,
                             proc_tree_cpu_seconds(process.pid) - cpu))  # fmt: skip
                busy = with_worker(sink, port, password, n)
        finally:
            process.terminate()
            process.wait(30)
    print(f"\n{'line':42} {'messages':>9} {'seconds':>8} {'msgs/s':>8} {'server CPU µs/msg':>18}")
    for name, seconds, count, cpu in rows:
        rate, cpu_us = count / seconds, cpu / count * 1e6
        print(f"{name:42} {count:9,} {seconds:8.2f} {rate:8,.0f} {cpu_us:18,.0f}")
    ingest = rows[2][2] / rows[2][1]
    busy_rate = busy["accepted"] / busy["seconds"]
    print(
        f"{'  ... with the worker delivering':42} {busy['accepted']:9,.0f} {busy['seconds']:8.2f} "
        f"{busy_rate:8,.0f}   (delivered meanwhile {busy['delivered_rate']:,.0f}/s)"
    )
    print("\nTargets (issue 13):")
    print(f"  STARTTLS+AUTH ingest >= {TARGET_RATE:,}/s: {ingest:,.0f}/s "
          f"{'met' if ingest >= TARGET_RATE else 'NOT MET'}")  # fmt: skip
    print(f"  a person's email while ingesting, p99 <= {TARGET_PERSON_P99:.1f} s: "
          f"{busy['person_p99']:.3f} s over {busy['probes']:.0f} emails "
          f"{'met' if busy['person_p99'] <= TARGET_PERSON_P99 else 'NOT MET'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
