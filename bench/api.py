"""How fast the HTTP API accepts mail: 8 clients over HTTP against `postroom run` on SQLite.

    .venv/bin/python -m bench.api                  # 5,000 single sends, 40 batches of 500
    .venv/bin/python -m bench.api --quick          # 1,000 single sends, 8 batches: a smoke run
    .venv/bin/python -m bench.api --threads 16     # postroom run's web server threads
    .venv/bin/python -m bench.api --web-alone      # skip the run with the worker inside

A fresh SQLite database in a temporary POSTROOM_DATA_DIR, migrated, with the company's address
set and one API key (send and read; its rate limit at the maximum, since measuring is the
point). Then `postroom run` serves it, as a user starts it, and the clients of bench.http_load
(8 HTTP/1.1 keep-alive connections, in their own process) send, in turn:

  reference   GET of an unknown API path: the JSON 404 runs waitress, Django's middleware and
              URL routing, and no database: the floor of any API request on this server
  single      POST /api/v1/messages, bench.corpus's 2 KB invoice notice, one recipient each
  batch       POST /api/v1/messages/batch, 500 such messages each

with `postroom run` as installed, its worker (a child process) delivering each message to the
Sandbox capture (in the web's process) while the single sends come in; then with `postroom
run --no-worker` (the web alone, as a web process runs in production): the targets are read
there. Each phase starts after a warm-up (code loaded, connections open). A message counts
as accepted when its answer says so (202, or a batch item's 202), which Postroom gives only
after the commit; the benchmark then checks the database holds exactly that many new messages.

It prints each line's rate, latency (p50, p99), the server's (its worker's included) and the
clients' CPU per message, and the targets as met or NOT MET. A benchmark, not a test: it
exits 0 whatever the figures, 1 if something broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import corpus
from bench.campaign import percentile
from bench.measure import ContenderError, proc_tree_cpu_seconds, run_measured
from bench.outbox import describe_machine, load_average
from bench.postroom_run import PROJECT_DIR, BenchError, _database
from bench.sink import free_port

# The targets (issue 13, "Targets"): single sends over HTTP with 8 clients on SQLite,
# and the batch endpoint.
TARGET_SINGLE_RATE = 500  # accepted messages a second
TARGET_SINGLE_P99 = 0.100  # seconds
TARGET_BATCH_RATE = 3000  # accepted messages a second
CLIENTS = 8
BATCH_SIZE = 500  # the batch endpoint's maximum (postroom.api.batch.MAX_BATCH)
WARMUP_SINGLES = 200
WARMUP_BATCHES = 2
# At most 100,000 requests a minute per key (postroom.accounts.api_keys): 1,666 a second,
# above what the single sends reach here; a batch counts as one request.
KEY_RATE_LIMIT = 100_000
READY_SECONDS = 60  # `postroom run` migrates (nothing to do) and starts in a few seconds


@dataclass
class Phase:
    name: str
    requests: int
    messages: int  # accepted
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def rate(self) -> float:
        count = self.messages or self.requests
        return count / self.seconds if self.seconds and not self.error else 0.0

    def per_message_us(self, seconds: float) -> float:
        count = self.messages or self.requests
        return seconds / count * 1e6 if count else 0.0


# --- the database and the server -----------------------------------------------------------


def prepare_database() -> str:
    """Migrate, set the company's address, and return a new API key (shown once, as always)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from postroom.accounts.api_keys import api_key_create
    from postroom.accounts.models import ApiScope
    from postroom.accounts.services import user_ensure_first_admin
    from postroom.company.selectors import company_get

    call_command("migrate", verbosity=0, interactive=False)
    company = company_get()
    company.name = corpus.SENDER_NAME
    company.sender_name = corpus.SENDER_NAME
    company.sender_email = corpus.SENDER
    company.save()
    first = user_ensure_first_admin()
    assert first is not None, "a fresh database has no administrator yet"
    _, key = api_key_create(
        actor=first[0],
        name="bench.api",
        scopes=[ApiScope.SEND, ApiScope.READ],
        rate_limit_per_minute=KEY_RATE_LIMIT,
    )
    connection.close()
    return key


def message_count() -> int:
    from django.db import connection

    from postroom.outbox.models import Message

    try:
        return Message.objects.count()
    finally:
        connection.close()  # the server writes; hold no read snapshot between phases


def delivered_count() -> int:
    """Messages the worker has finished with: captured by the Sandbox capture, here."""
    from django.db import connection

    from postroom.outbox.models import Message, MessageStatus

    try:
        return Message.objects.filter(status=MessageStatus.CAPTURED).count()
    finally:
        connection.close()


@contextmanager
def postroom_run(
    data_dir: Path, *, port: int, threads: int | None, has_worker: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """`postroom run` on `port`; stopped with SIGINT (Ctrl+C) at the end, as a user stops it."""
    log_path = data_dir / f"postroom-run-{'worker' if has_worker else 'web'}.log"
    argv = [sys.executable, "-m", "postroom", "run", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--threads", str(threads)] if threads else []
    argv += [] if has_worker else ["--no-worker"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=PROJECT_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        _wait_ready(server, port, log_path)
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_ready(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"postroom run exited with {server.returncode}:\n{_tail(log_path)}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ready-check", timeout=2)
        except urllib.error.HTTPError:
            return  # an answer (the API's 404): the server is up
        except OSError:
            time.sleep(0.2)
    raise BenchError(f"postroom run did not answer within {READY_SECONDS} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(nothing)"


# --- the phases ----------------------------------------------------------------------------


def run_phase(
    name: str,
    server: subprocess.Popen[bytes],
    *,
    port: int,
    key: str,
    kind: str,
    requests: int,
    first_index: int,
) -> Phase:
    """Send `requests` requests of `kind` with 8 clients; count the server's CPU meanwhile."""
    phase = Phase(name, requests, 0)
    argv = [
        sys.executable, "-m", "bench.http_load", "--port", str(port), "--key", key,
        "--kind", kind, "--requests", str(requests), "--clients", str(CLIENTS),
        "--batch-size", str(BATCH_SIZE), "--first-index", str(first_index),
    ]  # fmt: skip
    stored_before = message_count()
    server_cpu = proc_tree_cpu_seconds(server.pid)
    try:
        finished = run_measured(argv, cwd=PROJECT_DIR)
        phase.server_cpu_seconds = proc_tree_cpu_seconds(server.pid) - server_cpu
        result = finished.result()
    except ContenderError as error:
        phase.error = str(error)
        return phase
    phase.seconds, phase.client_cpu_seconds = result["seconds"], result["cpu_seconds"]
    phase.latencies = result["latencies"]
    phase.messages = result["accepted"]
    expected = "404" if kind == "reference" else ("200" if kind == "batch" else "202")
    statuses = result["statuses"]
    if statuses != {expected: requests} or result["unexpected"]:
        phase.error = f"answers {statuses}; first unexpected: {result['unexpected']}"
    stored = message_count() - stored_before
    if stored != phase.messages or result["distinct_ids"] != phase.messages:
        phase.error += (
            f" {phase.messages:,} messages accepted ({result['distinct_ids']:,} distinct ids) "
            f"but {stored:,} new in the database"
        )
    return phase


def serve_and_measure(
    data_dir: Path, key: str, args: argparse.Namespace, *, has_worker: bool
) -> list[Phase]:
    port = free_port()
    label = "postroom run (worker delivering)" if has_worker else "postroom run --no-worker"
    phases: list[Phase] = []
    # Each message its own recipient and subject: what an ERP sends, and no cache helps.
    first_index = 1_000_000 if has_worker else 0
    with postroom_run(data_dir, port=port, threads=args.threads, has_worker=has_worker) as server:

        def phase(name: str, kind: str, requests: int) -> Phase:
            nonlocal first_index
            result = run_phase(
                name, server, port=port, key=key, kind=kind, requests=requests,
                first_index=first_index,
            )  # fmt: skip
            first_index += requests * (BATCH_SIZE if kind == "batch" else 1)
            return result

        phase("warm-up", "single", WARMUP_SINGLES)
        if not has_worker:
            phase("warm-up", "batch", WARMUP_BATCHES)
        phases.append(phase(f"reference: JSON 404, {label}", "reference", args.singles))
        _progress(phases[-1])
        phases.append(phase(f"single sends, {label}", "single", args.singles))
        if has_worker:
            phases[-1].notes.append(f"{delivered_count():,} messages delivered by then")
        _progress(phases[-1])
        if not has_worker:
            phases.append(phase(f"batches of {BATCH_SIZE}, {label}", "batch", args.batches))
            _progress(phases[-1])
    return phases


def _progress(phase: Phase) -> None:
    state = "FAILED" if phase.error else f"{phase.rate:,.0f}/s"
    print(f"  {phase.name}: {state}", flush=True)


# --- the report ----------------------------------------------------------------------------


def print_table(phases: list[Phase]) -> None:
    header = ("line", "requests", "messages", "msgs/s", "p50 ms", "p99 ms",
              "server CPU us/msg", "client CPU us/msg")  # fmt: skip
    lines = [header]
    for phase in phases:
        if phase.error:
            lines.append((phase.name, f"{phase.requests:,}", "-", "FAILED", "-", "-", "-", "-"))
            continue
        lines.append(
            (
                phase.name,
                f"{phase.requests:,}",
                f"{phase.messages:,}" if phase.messages else "-",
                f"{phase.rate:,.0f}",
                f"{percentile(phase.latencies, 0.5) * 1000:,.1f}",
                f"{percentile(phase.latencies, 0.99) * 1000:,.1f}",
                f"{phase.per_message_us(phase.server_cpu_seconds):,.0f}",
                f"{phase.per_message_us(phase.client_cpu_seconds):,.0f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for number, line in enumerate(lines):
        print("  ".join([line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
        ]))  # fmt: skip
        if number == 0:
            print("  ".join("-" * width for width in widths))
    for phase in phases:
        for note in phase.notes:
            print(f"  * {phase.name}: {note}")
        if phase.error:
            print(f"  ! {phase.name} FAILED: {phase.error}")


def print_targets(phases: list[Phase]) -> None:
    def verdict(is_met: bool) -> str:
        return "met" if is_met else "NOT MET"

    by_name = {phase.name: phase for phase in phases}
    single = by_name.get("single sends, postroom run --no-worker")
    batch = by_name.get(f"batches of {BATCH_SIZE}, postroom run --no-worker")
    reference = by_name.get("reference: JSON 404, postroom run --no-worker")
    print()
    print(f"The API against its targets ({CLIENTS} clients, SQLite, postroom run --no-worker):")
    if single is None or single.error or batch is None or batch.error:
        print("  not measured: a phase failed (see above).")
        return
    p99 = percentile(single.latencies, 0.99)
    print(f"  {'single sends >= 500 msgs/s':<32}{single.rate:>10,.0f} msgs/s   "
          f"{verdict(single.rate >= TARGET_SINGLE_RATE)}")  # fmt: skip
    print(f"  {'single sends p99 <= 100 ms':<32}{p99 * 1000:>10,.1f} ms       "
          f"{verdict(p99 <= TARGET_SINGLE_P99)}")  # fmt: skip
    print(f"  {'batch >= 3,000 msgs/s':<32}{batch.rate:>10,.0f} msgs/s   "
          f"{verdict(batch.rate >= TARGET_BATCH_RATE)}")  # fmt: skip
    if reference and not reference.error and reference.rate:
        print(
            f"  single sends answered at {single.rate / reference.rate:.0%} of the reference's "
            f"rate ({reference.rate:,.0f} requests/s for the JSON 404, same clients and server)"
        )


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--singles", type=int, default=5000, help="single sends (5,000)")
    parser.add_argument("--batches", type=int, default=40, help="batches of 500 (40)")
    parser.add_argument("--quick", action="store_true", help="1,000 single sends, 8 batches")
    parser.add_argument("--threads", type=int, help="postroom run's web threads (its default)")
    parser.add_argument("--web-alone", action="store_true", help="skip the run with the worker")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.singles, args.batches = 1000, 8
    print(f"Postroom API benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {describe_machine()}")
    print(f"Load average at the start: {load_average():.2f}")
    print(f"{CLIENTS} clients; {args.singles:,} single sends, {args.batches} batches of "
          f"{BATCH_SIZE}; postroom run --threads {args.threads or 'default'}")  # fmt: skip
    print()
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-api-"))
    phases: list[Phase] = []
    failed = False
    try:
        with _database(False, data_dir):
            os.environ["POSTROOM_CAPTURE_PORT"] = str(free_port())
            os.environ["POSTROOM_SMTPD_PORT"] = "0"  # no SMTP listener: not measured here
            key = prepare_database()
            # The worker's run first, on an empty outbox: it then delivers what this run
            # sends, not the other run's messages too.
            if not args.web_alone:
                phases += serve_and_measure(data_dir, key, args, has_worker=True)
            phases += serve_and_measure(data_dir, key, args, has_worker=False)
    except BenchError as error:
        print(f"! the benchmark broke: {error}")
        failed = True
    except Exception:  # noqa: BLE001 - say what broke, keep the data folder
        print(f"! the benchmark broke:\n{traceback.format_exc()}")
        failed = True
    finally:
        if args.keep or failed or any(phase.error for phase in phases):
            print(f"Data folder and server logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print_table(phases)
    print_targets(phases)
    print()
    print(f"Load average at the end: {load_average():.2f} (above 0.5: other work shared the cores)")
    return 1 if failed or any(phase.error for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
