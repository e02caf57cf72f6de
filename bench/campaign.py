"""How fast a campaign goes out, next to the plain outbox worker and smtp-source in the same run.

    .venv/bin/python -m bench.campaign [--recipients 100000] [--quick]

One Postfix smtp-sink on 127.0.0.1 receives, in turn, from:
  smtp-source        Postfix's C load generator (the machine's ceiling);
  Postroom worker    the plain outbox: N bulk messages committed, then sent (bench.outbox's
                     Postroom line, the same worker settings);
  Postroom campaign  a campaign to N contacts: from Send (the pre-flight renders every
                     recipient, the job writes the messages in keyset batches while the
                     worker already sends them) to the campaign `finished`.
During the campaign a person's email is queued twice a second and timed to `sent`.
It prints each line's rate, CPU and memory, the campaign's share of the plain worker's rate,
the person's email latency (p50, p99), and the targets as met or NOT MET. A benchmark, not
a test: it exits 0 whatever the figures, 1 if something broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from typing import Any

from bench.measure import ContenderError, run_measured
from bench.outbox import (
    POOL_CONNECTIONS,
    PROJECT_DIR,
    Row,
    _progress,
    _sink_window,
    describe_machine,
    load_average,
    postroom,
    print_table,
    smtp_source,
)
from bench.sink import SinkMissingError, SmtpSink

TARGET_SHARE_OF_WORKER = 0.80  # "expansion and tracking cost little"
TARGET_LATENCY_P99 = 1.0  # seconds, a person's email during the campaign
TARGET_WORKER_RSS_MB = 150


def campaign(sink: SmtpSink, recipients: int, *, html: bool) -> tuple[Row, dict[str, Any]]:
    letter = "HTML letter" if html else "same text"
    row = Row(f"Postroom campaign ({letter}, SQLite, 1 process), Send -> finished", recipients)
    result: dict[str, Any] = {}

    def run(row: Row) -> None:
        argv = [
            sys.executable, "-m", "bench.campaign_run", "--port", str(sink.port),
            "--recipients", str(recipients), "--concurrency", str(POOL_CONNECTIONS),
            *(["--html"] if html else []),
        ]  # fmt: skip
        result.update(run_measured(argv, cwd=PROJECT_DIR).result())
        if result.get("error"):
            raise ContenderError(result["error"])

    _sink_window(sink, row, run)
    row.seconds = result.get("send_to_finished_seconds", 0.0)
    row.cpu_seconds = result.get("worker_cpu_seconds", 0.0)
    row.peak_rss_mb = result.get("worker_peak_rss_mb")
    row.notes += result.get("notes", [])
    if row.received is not None:
        row.received -= 100 + len(result.get("latencies", []))  # warm-up and probes
    for name in ("preflight", "expansion"):
        if f"{name}_seconds" in result:
            row.notes.append(f"{name} done {result[f'{name}_seconds']:.1f} s after Send")
    samples = result.get("rss_samples", [])
    if samples:
        picks = [samples[round(i * (len(samples) - 1) / 4)] for i in range(5)]
        row.notes.append(
            "worker RSS during the campaign: "
            + ", ".join(f"{rss:.0f} MB at {sent:,} sent" for sent, rss in picks)
        )
    return row, result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def print_targets(worker: Row, ours: Row, result: dict[str, Any]) -> None:
    def verdict(is_met: bool) -> str:
        return "met" if is_met else "NOT MET"

    print()
    print("The campaign against its targets:")
    if ours.error or worker.error:
        print("  not measured: a run failed (see above).")
        return
    share = ours.rate / worker.rate if worker.rate else 0.0
    print(
        f"  {'>= 80% of the plain worker':<34}{ours.rate:>9,.0f} vs {worker.rate:,.0f} msgs/s "
        f"= {share:.0%}   {verdict(share >= TARGET_SHARE_OF_WORKER)}"
    )
    latencies = result.get("latencies", [])
    if latencies:
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(
            f"  {'Contact Email p99 <= 1 s':<34}p50 {p50 * 1000:,.0f} ms, "
            f"p99 {p99 * 1000:,.0f} ms, "
            f"max {max(latencies) * 1000:,.0f} ms over {len(latencies)} emails   "
            f"{verdict(p99 <= TARGET_LATENCY_P99)}"
        )
        print(f"  {'':<34}mean {statistics.mean(latencies) * 1000:,.0f} ms")
    if ours.peak_rss_mb is not None:
        samples = [rss for _, rss in result.get("rss_samples", [])]
        flat = samples and max(samples) - min(samples) <= 0.2 * min(samples)
        print(
            f"  {'worker peak RSS <= 150 MB, flat':<34}{ours.peak_rss_mb:>9,.1f} MB"
            f"{' (flat)' if flat else ' (grew)'}   "
            f"{verdict(ours.peak_rss_mb <= TARGET_WORKER_RSS_MB and bool(flat))}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--recipients", type=int, default=100_000, help="(100,000)")
    parser.add_argument("--quick", action="store_true", help="5,000 recipients: a smoke run")
    parser.add_argument(
        "--html", action="store_true",
        help="also a campaign with an HTML letter (CSS inlined, text generated)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    recipients = 5000 if args.quick else args.recipients
    print(f"Postroom campaign benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {describe_machine()}")
    print(f"Load average at the start: {load_average():.2f}")
    print(f"Recipients: {recipients:,}")
    print()
    try:
        with SmtpSink() as sink:
            reference = smtp_source(sink, recipients)
            _progress(reference)
            _, worker = postroom(sink, recipients, postgres=False, workers=1, enqueue_how="bulk")
            _progress(worker)
            ours, result = campaign(sink, recipients, html=False)
            _progress(ours)
            rows = [reference, worker, ours]
            if args.html:
                rich, _ = campaign(sink, recipients, html=True)
                _progress(rich)
                rows.append(rich)
    except SinkMissingError as error:
        print(error)
        return 1
    print()
    print_table(rows)
    print_targets(worker, ours, result)
    print()
    print(f"Load average at the end: {load_average():.2f} (above 0.5: other work shared the cores)")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
