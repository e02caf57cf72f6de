"""The Python contenders, each run as its own process so its CPU and memory are its own.

    python -m bench.clients smtplib --port P --messages N
    python -m bench.clients aiosmtplib --port P --messages N --connections 16 [--uvloop]

Each prints one JSON line: messages sent, and the wall and CPU seconds of the sending loop
alone (interpreter start and imports excluded, as they are for smtp-source).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import smtplib
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bench import corpus
from bench.measure import self_cpu_seconds


def smtplib_new_connection_each(*, host: str, port: int, messages: int) -> int:
    """What an ERP typically does: build an EmailMessage, connect, send, QUIT, per message."""
    for index in range(messages):
        message = EmailMessage()
        message["From"] = f"{corpus.SENDER_NAME} <{corpus.SENDER}>"
        message["To"] = corpus.recipient(index)
        message["Subject"] = corpus.subject(index)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="example.com")
        message.set_content(corpus.BODY)
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(message)
    return messages


async def aiosmtplib_pooled(*, host: str, port: int, messages: int, connections: int) -> int:
    """The ceiling for Python: `connections` reused connections sending pre-rendered bytes."""
    import aiosmtplib  # here, so that the smtplib contender's memory does not include it

    rendered = corpus.PreRendered()
    next_index = iter(range(messages))
    sent = 0

    async def one_connection() -> None:
        nonlocal sent
        smtp = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=30)
        await smtp.connect()
        try:
            for index in next_index:  # shared: each message is taken by exactly one connection
                await smtp.sendmail(
                    corpus.SENDER, [corpus.recipient(index)], rendered.message(index)
                )
                sent += 1
        finally:
            await smtp.quit()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("contender", choices=["smtplib", "aiosmtplib"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()

    loop_factory = None
    if args.contender == "aiosmtplib":
        # Imported before the clock starts, like everything the smtplib contender uses.
        import aiosmtplib  # noqa: F401

        if args.uvloop:
            import uvloop

            loop_factory = uvloop.new_event_loop

    cpu_before, started = self_cpu_seconds(), time.perf_counter()
    if args.contender == "smtplib":
        sent = smtplib_new_connection_each(host=args.host, port=args.port, messages=args.messages)
    else:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            sent = runner.run(
                aiosmtplib_pooled(
                    host=args.host,
                    port=args.port,
                    messages=args.messages,
                    connections=args.connections,
                )
            )
    wall, cpu = time.perf_counter() - started, self_cpu_seconds() - cpu_before
    print(json.dumps({"sent": sent, "seconds": wall, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
