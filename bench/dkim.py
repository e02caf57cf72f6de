"""What DKIM signing costs: per message, and on the outbox's bulk path, signed beside unsigned.

    .venv/bin/python -m bench.dkim [--messages 5000] [--signings 300] [--quick]

1. Signing alone, in this process: the time `DkimSigner.sign` takes for a typical campaign
   message of about 5 kB (text and HTML, List-Unsubscribe), with an RSA-2048 key, an
   Ed25519 key, both (a domain signing with both gets two signatures), and for mail from a
   domain with no key (the parse that finds out there is nothing to do).
2. The bulk path: one Postfix smtp-sink receives N bulk messages from the real `postroom
   worker` (bench.outbox's Postroom line), unsigned, then with every message RSA-signed, then
   Ed25519-signed, then unsigned again (the two unsigned runs bracket the machine's drift).
It prints the figures and the signed runs' share of the unsigned rate. A benchmark, not a
test: it exits 0 whatever the figures, 1 if something broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from typing import Any

from bench.measure import ContenderError, run_measured
from bench.outbox import (
    POOL_CONNECTIONS,
    PROJECT_DIR,
    WARMUP_MESSAGES,
    Row,
    _progress,
    _sink_window,
    describe_machine,
    load_average,
    postroom,
    print_table,
)
from bench.sink import SinkMissingError, SmtpSink

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


def campaign_message() -> bytes:
    """A campaign message of about 5 kB, as the bulk renderer produces them."""
    from django.utils import timezone

    from postroom.mail.addresses import parse_address
    from postroom.mail.message import OutgoingEmail, build_message

    paragraph = (
        "Our winter range is here: warm jackets, wool socks and boots for every trail. "
        "Members get 15% off until the end of the month.\r\n"
    )
    email = OutgoingEmail(
        from_=parse_address("Example Trading <news@example.com>"),
        to=[parse_address("Customer One <customer1@example.net>")],
        subject="Our December news: the winter range is here",
        text=paragraph * 16,
        html="<html><body>" + f"<p>{paragraph}</p>" * 16 + "</body></html>",
        headers={
            "List-Unsubscribe": "<https://mail.example.com/u/0123456789abcdef>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    return build_message(email, message_id="<bench.1@example.com>", date=timezone.now()).raw


def signing_costs(signings: int) -> list[tuple[str, float, float]]:
    """(case, median ms per message, messages per second on one core) for each case."""
    from postroom.dkim.keys import key_pair_generate
    from postroom.dkim.models import Algorithm
    from postroom.dkim.signing import DkimSigner, signing_key_make

    keys = {}
    for algorithm in ALGORITHMS:
        pair = key_pair_generate(Algorithm(algorithm))
        keys[algorithm] = signing_key_make(
            domain="example.com", selector=algorithm[:3], algorithm=algorithm,
            private_key=pair.private,
        )  # fmt: skip
    cases = {
        "no key for the From domain (passes unchanged)": DkimSigner(
            {"other.example": (keys["rsa-sha256"],)}
        ),
        "RSA-2048 (rsa-sha256)": DkimSigner({"example.com": (keys["rsa-sha256"],)}),
        "Ed25519 (ed25519-sha256)": DkimSigner({"example.com": (keys["ed25519-sha256"],)}),
        "RSA-2048 and Ed25519 (two signatures)": DkimSigner({"example.com": tuple(keys.values())}),
    }
    message = campaign_message()
    figures = []
    for name, signer in cases.items():
        signer.sign(message)  # warm: imports, first-use caches
        times = []
        for _ in range(signings):
            started = time.perf_counter()
            signer.sign(message)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        figures.append((name, median * 1000, 1 / median))
    return figures


def signed_postroom(sink: SmtpSink, messages: int, algorithm: str) -> Row:
    row = Row(f"Postroom worker, every message signed {algorithm}", messages)
    result: dict[str, Any] = {}

    def run(row: Row) -> None:
        argv = [
            sys.executable, "-m", "bench.dkim_run", "--algorithm", algorithm,
            "--port", str(sink.port), "--messages", str(messages),
            "--concurrency", str(POOL_CONNECTIONS), "--warmup", str(WARMUP_MESSAGES),
        ]  # fmt: skip
        result.update(run_measured(argv, cwd=PROJECT_DIR).result())
        if result.get("error"):
            raise ContenderError(result["error"])

    _sink_window(sink, row, run)
    row.seconds = result.get("deliver_seconds", 0.0)
    row.cpu_seconds = result.get("worker_cpu_seconds", 0.0)
    row.peak_rss_mb = result.get("worker_peak_rss_mb")
    row.notes += [note for note in result.get("notes", []) if note]
    if row.received is not None and not row.error:
        row.received -= result.get("warmup", 0)
    return row


def print_costs(rows: list[Row]) -> None:
    unsigned = [row for row in rows if ", unsigned" in row.name and not row.error]
    if not unsigned:
        print("  not measured: the unsigned runs failed (see above).")
        return
    rate = statistics.mean(row.rate for row in unsigned)
    cpu = statistics.mean(row.cpu_us for row in unsigned)
    print(f"Bulk path, signed against unsigned (mean of the unsigned runs: {rate:,.0f} msgs/s, "
          f"{cpu:,.0f} us CPU/msg):")  # fmt: skip
    for row in rows:
        if ", every message signed" in row.name and not row.error:
            print(
                f"  {row.name:<52}{row.rate:>8,.0f} msgs/s = {row.rate / rate:.0%} of unsigned, "
                f"+{row.cpu_us - cpu:,.0f} us CPU/msg"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dkim", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--messages", type=int, default=5000, help="per bulk run (5,000)")
    parser.add_argument("--signings", type=int, default=300, help="per signing case (300)")
    parser.add_argument("--quick", action="store_true", help="1,000 messages, 100 signings")
    args = parser.parse_args(argv)
    messages, signings = (1000, 100) if args.quick else (args.messages, args.signings)

    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postroom.settings")
    django.setup()
    print(f"Postroom DKIM benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {describe_machine()}")
    load = load_average()
    if load > 0.5:
        print(f"Note: the machine is busy (load average {load:.2f}): times are inflated.")
    print()
    size = len(campaign_message())
    print(f"1. Signing one {size:,}-byte campaign message (median of {signings}), one core:")
    for name, ms, per_second in signing_costs(signings):
        print(f"  {name:<48}{ms:>8.2f} ms  = {per_second:>8,.0f} msgs/s per core")
    print()
    print(f"2. The bulk path: {messages:,} bulk messages each run (bench.outbox's corpus), "
          "committed -> sent -> recorded, SQLite, 1 worker:", flush=True)  # fmt: skip
    rows: list[Row] = []
    try:
        with SmtpSink() as sink:
            rows += postroom(sink, messages, postgres=False, workers=1, enqueue_how="bulk")[1:]
            rows[-1].name = "Postroom worker, unsigned (first)"
            _progress(rows[-1])
            for algorithm in ALGORITHMS:
                rows.append(signed_postroom(sink, messages, algorithm))
                _progress(rows[-1])
            rows += postroom(sink, messages, postgres=False, workers=1, enqueue_how="bulk")[1:]
            rows[-1].name = "Postroom worker, unsigned (last)"
            _progress(rows[-1])
    except SinkMissingError as error:
        print(error)
        return 1
    print()
    print_table(rows)
    print()
    print_costs(rows)
    print()
    print(f"Load average at the end: {load_average():.2f} (above 0.5: other work shared the cores)")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
