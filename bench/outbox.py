"""How fast Postroom's outbox delivers, next to references measured in the same run.

    .venv/bin/python -m bench.outbox [--messages 20000] [--quick] [--postgres]

One Postfix smtp-sink on 127.0.0.1 receives, in turn, from:
  smtp-source            Postfix's C load generator, 20 sessions, connections reused;
  smtplib                a new connection and an EmailMessage per message (what ERPs do);
  aiosmtplib x16         16 reused connections sending pre-rendered bytes (Python's ceiling),
                         on asyncio and, when installed, on uvloop;
  Postroom               the full path: messages committed in the outbox, then claimed, sent
                         and their states recorded by the real `postroom worker` process.
It prints messages per second, CPU per message and peak memory for each, Postroom's ratios
to the references, and the issue's targets as met or not met. docs/performance.md explains
every line. A benchmark, not a test: it exits 0 whatever the figures, 1 if something broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import corpus
from bench.measure import ContenderError, run_measured
from bench.sink import SinkMissingError, SmtpSink, postfix_tool

PROJECT_DIR = Path(__file__).resolve().parent.parent

# The targets for Postroom's full path (SQLite, one worker).
TARGET_RATE = 2000  # messages per second
TARGET_SHARE_OF_SMTP_SOURCE = 0.10
TARGET_TIMES_SMTPLIB = 5.0
TARGET_WORKER_RSS_MB = 150  # "worker memory flat (<= 150 MB RSS while 100,000 queued are sent)"

SMTP_SOURCE_SESSIONS = 20  # the reference setting: 20 sessions, connections reused
POOL_CONNECTIONS = 32  # the aiosmtplib ceiling and Postroom's worker use the same number (see docs)
# A new connection per message runs at a few hundred a second: 2,000 say as much as 20,000.
SMTPLIB_MESSAGES = 2000
WARMUP_MESSAGES = 100  # sent through Postroom first, so the pool is open when the clock starts


@dataclass
class Row:
    name: str
    messages: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float | None = None
    sink_cpu_seconds: float | None = None
    received: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds and not self.error else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.messages * 1e6 if self.messages else 0.0


# --- contenders -------------------------------------------------------------------------


def _sink_window(sink: SmtpSink, row: Row, run: Any) -> Row:
    """Run `run(row)` and charge the sink's CPU and received count to `row`."""
    cpu, received = sink.cpu_seconds(), sink.received()
    try:
        run(row)
    except ContenderError as error:
        row.error = str(error)
    except Exception:  # noqa: BLE001 - the benchmark goes on and says what broke
        row.error = traceback.format_exc()
    row.sink_cpu_seconds = sink.cpu_seconds() - cpu
    row.received = sink.received() - received
    return row


def smtp_source(sink: SmtpSink, messages: int) -> Row:
    row = Row(f"smtp-source (C), {SMTP_SOURCE_SESSIONS} sessions, reused", messages)

    def run(row: Row) -> None:
        finished = run_measured(
            [
                postfix_tool("smtp-source"),
                "-s", str(SMTP_SOURCE_SESSIONS),
                "-m", str(messages),
                "-l", str(corpus.BODY_BYTES),
                "-d",  # don't disconnect: the next message goes over the same connection
                "-f", corpus.SENDER,
                "-t", corpus.recipient(0),
                f"{sink.host}:{sink.port}",
            ]
        )  # fmt: skip
        if finished.returncode != 0:
            raise ContenderError(f"smtp-source exited {finished.returncode}: {finished.stderr}")
        row.seconds, row.cpu_seconds = finished.wall_seconds, finished.cpu_seconds
        row.peak_rss_mb = finished.peak_rss_mb

    return _sink_window(sink, row, run)


def python_client(sink: SmtpSink, name: str, messages: int, *extra: str) -> Row:
    row = Row(name, messages)

    def run(row: Row) -> None:
        finished = run_measured(
            [sys.executable, "-m", "bench.clients", *extra, "--host", sink.host,
             "--port", str(sink.port), "--messages", str(messages)],
            cwd=PROJECT_DIR,
        )  # fmt: skip
        result = finished.result()
        row.seconds, row.cpu_seconds = result["seconds"], result["cpu_seconds"]
        row.peak_rss_mb = finished.peak_rss_mb

    return _sink_window(sink, row, run)


def postroom(
    sink: SmtpSink, messages: int, *, postgres: bool, workers: int, enqueue_how: str
) -> list[Row]:
    """Postroom's full path, run by bench.postroom_run in its own process (it sets Django up)."""
    database = "PostgreSQL" if postgres else "SQLite"
    plural = "es" if workers > 1 else ""
    enqueue = Row(f"Postroom enqueue ({database})", messages)
    deliver = Row(f"Postroom worker ({database}, {workers} process{plural})", messages)
    result: dict[str, Any] = {}

    def run(row: Row) -> None:
        argv = [
            sys.executable, "-m", "bench.postroom_run",
            "--port", str(sink.port), "--messages", str(messages),
            "--workers", str(workers), "--concurrency", str(POOL_CONNECTIONS),
            "--warmup", str(WARMUP_MESSAGES), "--enqueue", enqueue_how,
        ]  # fmt: skip
        if postgres:
            argv.append("--postgres")
        finished = run_measured(argv, cwd=PROJECT_DIR)
        result.update(finished.result())
        if result.get("error"):
            raise ContenderError(result["error"])

    _sink_window(sink, deliver, run)
    if "enqueue_seconds" in result:
        enqueue.seconds = result["enqueue_seconds"]
        enqueue.cpu_seconds = result["enqueue_cpu_seconds"]
        enqueue.peak_rss_mb = None  # the enqueuing process also polls; its memory is not asked
    else:
        enqueue.error = "not reached (see the worker's line)"
    if "enqueue_how" in result:
        enqueue.notes.append(result["enqueue_how"])
    deliver.seconds = result.get("deliver_seconds", 0.0)
    deliver.cpu_seconds = result.get("worker_cpu_seconds", 0.0)
    deliver.peak_rss_mb = result.get("worker_peak_rss_mb")
    deliver.notes += result.get("notes", [])
    if deliver.received is not None:
        if deliver.error:
            # What the server got tells a stuck worker (sent, never recorded) from a dead one.
            deliver.notes.append(
                f"smtp-sink received {deliver.received:,} messages in all (warm-up included)"
            )
            deliver.received = None
        else:
            # The sink also received the warm-up messages; the window's count is the run's.
            deliver.received -= result.get("warmup", 0)
    return [enqueue, deliver]


# --- report -----------------------------------------------------------------------------


def _mb(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def print_table(rows: list[Row]) -> None:
    header = ("contender", "messages", "msgs/s", "CPU us/msg", "peak RSS MB", "sink us/msg")
    lines = [header]
    for row in rows:
        if row.error:
            lines.append((row.name, f"{row.messages:,}", "FAILED", "-", "-", "-"))
            continue
        sink_us = (
            f"{row.sink_cpu_seconds / row.messages * 1e6:,.0f}"
            if row.sink_cpu_seconds is not None and row.received
            else "-"
        )
        lines.append(
            (
                row.name,
                f"{row.messages:,}",
                f"{row.rate:,.0f}",
                f"{row.cpu_us:,.0f}",
                _mb(row.peak_rss_mb),
                sink_us,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for number, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    for row in rows:
        for note in row.notes:
            print(f"  * {row.name}: {note}")
        if row.received is not None and not row.error and row.received != row.messages:
            print(f"  ! {row.name}: smtp-sink received {row.received:,}, not {row.messages:,}")
        if row.error:
            print(f"  ! {row.name} FAILED:\n{_indent(row.error)}")


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.rstrip().splitlines())


def print_targets(rows: dict[str, Row]) -> None:
    reference = rows.get("smtp-source")
    smtplib_row = rows.get("smtplib")
    ours = rows.get("postroom")
    print()
    print("Postroom's full path (committed -> delivered -> every state recorded), SQLite:")
    if ours is None or ours.error:
        print("  not measured: the Postroom run failed (see above).")
        return

    def verdict(is_met: bool) -> str:
        return "met" if is_met else "NOT MET"

    is_met = ours.rate >= TARGET_RATE
    print(f"  {'>= 2,000 msgs/s':<36}{ours.rate:>12,.0f} msgs/s   {verdict(is_met)}")
    if reference and reference.rate:
        share = ours.rate / reference.rate
        is_met = share >= TARGET_SHARE_OF_SMTP_SOURCE
        print(f"  {'>= 10% of smtp-source':<36}{share:>12.1%}            {verdict(is_met)}")
    if smtplib_row and smtplib_row.rate:
        times = ours.rate / smtplib_row.rate
        is_met = times >= TARGET_TIMES_SMTPLIB
        print(f"  {'>= 5x plain smtplib':<36}{times:>12.1f}x           {verdict(is_met)}")
    if ours.peak_rss_mb is not None:
        is_met = ours.peak_rss_mb <= TARGET_WORKER_RSS_MB
        print(
            f"  {'worker peak RSS <= 150 MB':<36}{ours.peak_rss_mb:>12,.1f} MB       "
            f"{verdict(is_met)}"
            + (
                ""
                if ours.messages >= 100_000
                else f"  (the issue asks it at 100,000 messages; this run sent "
                f"{ours.messages:,}: --messages 100000)"
            )
        )
    postgres = rows.get("postgres")
    if postgres and not postgres.error:
        is_met = postgres.rate >= ours.rate
        print(
            f"  {'PostgreSQL, 2 workers >= SQLite':<36}{postgres.rate:>12,.0f} msgs/s   "
            f"{verdict(is_met)}"
        )


def describe_machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        postfix = subprocess.run(
            [postfix_tool("postconf"), "-d", "-h", "mail_version"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (SinkMissingError, OSError, subprocess.SubprocessError):
        postfix = "?"
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, Postfix {postfix or '?'}"
    )


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbox", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--messages", type=int, default=20_000, help="per contender (20,000)")
    parser.add_argument("--quick", action="store_true", help="2,000 messages: a smoke run")
    parser.add_argument(
        "--postgres", action="store_true",
        help="also run Postroom on PostgreSQL (127.0.0.1:5432, user postgres) with 2 workers",
    )  # fmt: skip
    parser.add_argument(
        "--enqueue", choices=["bulk", "typed", "raw"], default="bulk",
        help="how Postroom's messages enter the outbox: a campaign's bulk rows rendered by the "
        "worker (bulk_enqueue, the default), typed fields (message_enqueue) or ready bytes "
        "(message_enqueue_raw, as send_mail does)",
    )  # fmt: skip
    parser.add_argument(
        "--only", choices=["references", "postroom"],
        help="run only the reference contenders, or only Postroom",
    )  # fmt: skip
    args = parser.parse_args(argv)
    messages = 2000 if args.quick else args.messages
    smtplib_messages = min(messages, 500 if args.quick else SMTPLIB_MESSAGES)

    print(f"Postroom outbox benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {describe_machine()}")
    size = len(corpus.PreRendered().message(0))
    print(f"Messages: {messages:,} of {size:,} bytes, one recipient each")
    load = load_average()
    if load > 0.5:
        print(
            f"Note: the machine is busy (load average {load:.2f}): messages per second will be "
            "low; CPU per message is the steadier figure."
        )
    print()

    rows: list[Row] = []
    named: dict[str, Row] = {}
    try:
        with SmtpSink() as sink:
            print(f"smtp-sink listening on {sink.host}:{sink.port}", flush=True)
            if args.only != "postroom":
                named["smtp-source"] = smtp_source(sink, messages)
                rows.append(named["smtp-source"])
                _progress(rows[-1])
                named["smtplib"] = python_client(
                    sink, "smtplib, new connection + EmailMessage each", smtplib_messages,
                    "smtplib",
                )  # fmt: skip
                if smtplib_messages < messages:
                    named["smtplib"].notes.append(
                        f"measured on {smtplib_messages:,} messages, not {messages:,}: at a few "
                        "hundred a second that is enough; figures are per message"
                    )
                rows.append(named["smtplib"])
                _progress(rows[-1])
                rows.append(
                    python_client(
                        sink, f"aiosmtplib x{POOL_CONNECTIONS}, pre-rendered, asyncio", messages,
                        "aiosmtplib", "--connections", str(POOL_CONNECTIONS),
                    )
                )  # fmt: skip
                _progress(rows[-1])
                if _has_uvloop():
                    rows.append(
                        python_client(
                            sink, f"aiosmtplib x{POOL_CONNECTIONS}, pre-rendered, uvloop",
                            messages, "aiosmtplib", "--connections", str(POOL_CONNECTIONS),
                            "--uvloop",
                        )
                    )  # fmt: skip
                    _progress(rows[-1])
            if args.only != "references":
                enqueue, deliver = postroom(
                    sink, messages, postgres=False, workers=1, enqueue_how=args.enqueue
                )
                rows += [enqueue, deliver]
                named["postroom"] = deliver
                _progress(deliver)
                if args.postgres:
                    enqueue, deliver = postroom(
                        sink, messages, postgres=True, workers=2, enqueue_how=args.enqueue
                    )
                    rows += [enqueue, deliver]
                    named["postgres"] = deliver
                    _progress(deliver)
    except SinkMissingError as error:
        print(error)
        return 1
    print()
    print_table(rows)
    if args.only != "references":
        print_targets(named)
    print()
    print(f"Load average at the end: {load_average():.2f} (above 0.5: other work shared the cores)")
    return 1 if any(row.error for row in rows) else 0


def _progress(row: Row) -> None:
    status = "FAILED" if row.error else f"{row.rate:,.0f} msgs/s"
    print(f"  {row.name}: {status}", flush=True)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
