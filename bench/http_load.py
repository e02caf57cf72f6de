"""The HTTP clients of bench.api: N keep-alive connections sending requests one after another.

    python -m bench.http_load --port P --key KEY --kind single --requests 5000 [--clients 8]
    python -m bench.http_load --port P --key KEY --kind batch --requests 40 [--batch-size 500]
    python -m bench.http_load --port P --kind reference --requests 5000

Run by bench.api in its own process, so its CPU is its own and not the server's. Each client
is one HTTP/1.1 connection (what an ERP's HTTP library keeps open) on one asyncio loop: a
request goes out when the previous answer on that connection is read whole. Bodies are built
before the clock starts, so the clients spend their time sending and reading.

kinds:
  single     POST /api/v1/messages, one message each (bench.corpus's 2 KB invoice notice)
  batch      POST /api/v1/messages/batch, --batch-size messages each
  reference  GET /api/v1/reference-404: the API's JSON "no such endpoint" answer, which runs
             waitress, Django's middleware and URL routing but no database and no key

It prints one JSON line: requests, accepted messages (202s, or a batch's items queued),
the statuses seen, the first unexpected answers, each request's latency in seconds, and the
wall and CPU seconds of the sending alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import corpus
from bench.measure import self_cpu_seconds

SEND_PATH = "/api/v1/messages"
BATCH_PATH = "/api/v1/messages/batch"
REFERENCE_PATH = "/api/v1/reference-404"
# A request that has not been answered in this long is reported as a failure, not waited for.
TIMEOUT_SECONDS = 120
UNEXPECTED_KEPT = 5  # enough to see what went wrong without a page of identical errors


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    ids: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def message(index: int) -> dict[str, Any]:
    """The message every contender of the benchmarks sends, as the API's JSON."""
    return {
        "from": "company",
        "to": [corpus.recipient(index)],
        "subject": corpus.subject(index),
        "text": corpus.BODY,
    }


def _request(method: str, path: str, key: str, body: bytes) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def build_requests(args: argparse.Namespace) -> list[bytes]:
    start = args.first_index
    if args.kind == "reference":
        return [_request("GET", REFERENCE_PATH, "", b"")] * args.requests
    if args.kind == "single":
        return [
            _request("POST", SEND_PATH, args.key, json.dumps(message(start + n)).encode())
            for n in range(args.requests)
        ]
    size = args.batch_size
    return [
        _request(
            "POST",
            BATCH_PATH,
            args.key,
            json.dumps({"messages": [message(start + n * size + i) for i in range(size)]}).encode(),
        )
        for n in range(args.requests)
    ]


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """The status and body of one answer, and whether the server closes the connection."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    is_closing = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            is_closing = True
    return status, await reader.readexactly(length), is_closing


def _count(kind: str, status: int, body: bytes, tally: Tally) -> None:
    tally.statuses[status] += 1
    if kind == "reference":
        if status != 404 and len(tally.unexpected) < UNEXPECTED_KEPT:
            tally.unexpected.append(f"{status}: {body[:300]!r}")
        return
    if kind == "single" and status == 202:
        tally.accepted += 1
        tally.ids.add(json.loads(body)["id"])
        return
    if kind == "batch" and status == 200:
        for item in json.loads(body)["items"]:
            if item["status"] == 202:
                tally.accepted += 1
                tally.ids.add(item["message"]["id"])
            elif len(tally.unexpected) < UNEXPECTED_KEPT:
                tally.unexpected.append(f"item {item['index']}: {item}")
        return
    if len(tally.unexpected) < UNEXPECTED_KEPT:
        tally.unexpected.append(f"{status}: {body[:300]!r}")


async def _client(host: str, port: int, kind: str, requests: Iterator[bytes], tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:  # shared: each request is sent by exactly one client
            started = time.perf_counter()
            writer.write(request)
            answer = await asyncio.wait_for(_read_answer(reader), TIMEOUT_SECONDS)
            tally.latencies.append(time.perf_counter() - started)
            status, body, is_closing = answer
            _count(kind, status, body, tally)
            if is_closing:  # a server without keep-alive: connect again, as a client would
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def run(args: argparse.Namespace, requests: list[bytes]) -> Tally:
    tally = Tally()
    shared = iter(requests)
    await asyncio.gather(
        *(_client(args.host, args.port, args.kind, shared, tally) for _ in range(args.clients))
    )
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="")
    parser.add_argument("--kind", choices=["single", "batch", "reference"], required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--first-index", type=int, default=0, help="of the first message")
    args = parser.parse_args()

    requests = build_requests(args)
    cpu_before, started = self_cpu_seconds(), time.perf_counter()
    tally = asyncio.run(run(args, requests))
    wall, cpu = time.perf_counter() - started, self_cpu_seconds() - cpu_before
    print(
        json.dumps(
            {
                "requests": len(tally.latencies),
                "accepted": tally.accepted,
                "distinct_ids": len(tally.ids),
                "statuses": {str(status): n for status, n in sorted(tally.statuses.items())},
                "unexpected": tally.unexpected,
                "latencies": tally.latencies,
                "seconds": wall,
                "cpu_seconds": cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
