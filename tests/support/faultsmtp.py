"""A raw SMTP server on 127.0.0.1 that misbehaves on cue, for the delivery transport's tests.

aiosmtpd (tests/support/smtpd.py) is a correct server; some faults need a server that is
not: one that hangs up after the final "." without a word, sends a 1 MB reply line or bytes
that are no SMTP at all, answers 452 after the hundredth RCPT, or closes after a 421. This
one speaks just enough SMTP (greeting, EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
NOOP, QUIT) and asks its `FaultScript` for every reply. A reply is a line ("250 2.1.5 Ok"),
raw bytes sent as they are, `CLOSE` (hang up), `HANG` (say nothing, ever), or a list of those.

It records every command with the read it arrived in, so a test can tell whether the client
pipelined (RFC 2920: MAIL, RCPT and DATA arrive in one read) or waited for each reply; and,
like a pipelining server, it sends its replies in one write once it has read all input.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
_START_TIMEOUT = 5.0  # seconds; a loopback listener is up in milliseconds
_READ_SIZE = 65536


class _Action:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CLOSE = _Action("CLOSE")  # hang up at once (after sending what came before it)
HANG = _Action("HANG")  # never answer; keep reading until the client gives up


@dataclass(frozen=True)
class Flood:
    """`piece` sent `times` times, written piece by piece so the server holds one piece."""

    piece: bytes
    times: int


ReplyItem = str | bytes | _Action | Flood
Reply = ReplyItem | Sequence[ReplyItem]


@dataclass
class FaultSession:
    """One connection, as the script sees it."""

    number: int
    mail_from: str | None = None
    recipients: list[str] = field(default_factory=list)  # accepted in this transaction
    rcpt_count: int = 0  # RCPT commands in this transaction, accepted or not
    messages: int = 0  # messages received on this connection


@dataclass
class FaultScript:
    """The replies. Callables get the session (and the address or the message content)."""

    greeting: Reply = "220 fault.postroom.test ESMTP"
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")
    ehlo: Reply | None = None  # None: "250-fault.postroom.test" plus the extensions
    mail: Reply | Callable[[FaultSession, str], Reply] = "250 2.1.0 Ok"
    rcpt: Reply | Callable[[FaultSession, str], Reply] = "250 2.1.5 Ok"
    data: Reply | Callable[[FaultSession], Reply] = "354 End data with <CR><LF>.<CR><LF>"
    end_of_data: Reply | Callable[[FaultSession, bytes], Reply] = "250 2.0.0 Ok: queued"


@dataclass(frozen=True)
class ReceivedCommand:
    session: int
    line: str  # without CRLF
    read: int  # which read of the connection it arrived in

    @property
    def verb(self) -> str:
        return self.line.split(" ", 1)[0].split(":", 1)[0].upper()


@dataclass(frozen=True)
class ReceivedMessage:
    session: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # as received, dot-unstuffed, without the final ".\r\n"


def _address(argument: str) -> str:
    start, end = argument.find("<"), argument.find(">")
    return argument[start + 1 : end] if start != -1 and end > start else argument.strip()


class _Connection:
    def __init__(
        self, server: FaultSmtpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.session = FaultSession(number=server._next_session())
        self.buffer = bytearray()
        self.reads = 0
        self.outgoing: list[bytes] = []

    async def run(self) -> None:
        try:
            if not await self.reply(self.server.script.greeting):
                return
            await self.flush()
            while True:
                line = await self.read_line()
                if line is None:
                    return
                if not await self.command(line):
                    return
                if not self.buffer:
                    await self.flush()  # like Postfix: reply when the input is all read
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.writer.close()

    async def read_line(self) -> bytes | None:
        while b"\n" not in self.buffer:
            await self.flush()
            chunk = await self.reader.read(_READ_SIZE)
            if not chunk:
                return None
            self.reads += 1
            self.buffer.extend(chunk)
        end = self.buffer.index(b"\n") + 1
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line

    async def flush(self) -> None:
        if self.outgoing:
            self.writer.write(b"".join(self.outgoing))
            self.outgoing.clear()
            await self.writer.drain()

    async def reply(self, reply: Reply) -> bool:
        """Queue `reply`; False if it ends the connection."""
        items = [reply] if isinstance(reply, str | bytes | _Action | Flood) else list(reply)
        for item in items:
            if item is CLOSE:
                # Write and hang up in one go, as a server that exits right after a reply
                # does: the FIN follows the reply at once (run() closes the writer).
                self.writer.write(b"".join(self.outgoing))
                self.outgoing.clear()
                return False
            if item is HANG:
                await self.flush()
                while await self.reader.read(_READ_SIZE):
                    pass
                return False
            if isinstance(item, Flood):
                await self.flush()
                for _ in range(item.times):
                    self.writer.write(item.piece)
                    await self.writer.drain()
            elif isinstance(item, str):
                self.outgoing.append(item.encode() + b"\r\n")
            elif isinstance(item, bytes):
                self.outgoing.append(item)
        return True

    async def command(self, raw: bytes) -> bool:  # noqa: C901 - one branch per SMTP verb
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        self.server._record(ReceivedCommand(self.session.number, line, self.reads))
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        script, session = self.server.script, self.session
        if verb in ("EHLO", "HELO"):
            if script.ehlo is not None and verb == "EHLO":
                return await self.reply(script.ehlo)
            lines = ["fault.postroom.test", *script.extensions] if verb == "EHLO" else ["ok"]
            return await self.reply([f"250-{text}" for text in lines[:-1]] + [f"250 {lines[-1]}"])
        if verb == "MAIL":
            self.reset()
            reply = (
                script.mail(session, _address(argument)) if callable(script.mail) else script.mail
            )
            if _is_positive(reply):
                session.mail_from = _address(argument)
            return await self.reply(reply)
        if verb == "RCPT":
            address = _address(argument)
            reply = script.rcpt(session, address) if callable(script.rcpt) else script.rcpt
            session.rcpt_count += 1
            if session.mail_from is None:
                reply = "503 5.5.1 Error: need MAIL command"
            if _is_positive(reply):
                session.recipients.append(address)
            return await self.reply(reply)
        if verb == "DATA":
            if not session.recipients:
                return await self.reply("554 5.5.1 Error: no valid recipients")
            reply = script.data(session) if callable(script.data) else script.data
            if not await self.reply(reply):
                return False
            if not _starts_with(reply, "354"):
                return True
            content = await self.read_message()
            if content is None:
                return False
            self.server._receive(
                ReceivedMessage(
                    session.number, session.mail_from or "", tuple(session.recipients), content
                )
            )
            session.messages += 1
            reply = (
                script.end_of_data(session, content)
                if callable(script.end_of_data)
                else script.end_of_data
            )
            self.reset()
            return await self.reply(reply)
        if verb == "RSET":
            self.reset()
            return await self.reply("250 2.0.0 Ok")
        if verb == "NOOP":
            return await self.reply("250 2.0.0 Ok")
        if verb == "QUIT":
            await self.reply("221 2.0.0 Bye")
            await self.flush()
            return False
        return await self.reply("502 5.5.2 Error: command not recognized")

    async def read_message(self) -> bytes | None:
        lines: list[bytes] = []
        while True:
            line = await self.read_line()
            if line is None:
                return None
            if line == b".\r\n":
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)  # RFC 5321 §4.5.2

    def reset(self) -> None:
        self.session.mail_from = None
        self.session.recipients = []
        self.session.rcpt_count = 0


def _starts_with(reply: Reply, prefix: str) -> bool:
    first = (
        reply if isinstance(reply, str | bytes | _Action | Flood) else (reply[0] if reply else "")
    )
    if isinstance(first, bytes):
        return first.startswith(prefix.encode())
    return isinstance(first, str) and first.startswith(prefix)


def _is_positive(reply: Reply) -> bool:
    return _starts_with(reply, "2")


class FaultSmtpServer:
    """A `FaultScript`-driven server on 127.0.0.1:<free port>, in its own thread and loop."""

    host = LOOPBACK

    def __init__(self, script: FaultScript | None = None) -> None:
        self.script = script or FaultScript()
        self.port = 0
        self.commands: list[ReceivedCommand] = []
        self.messages: list[ReceivedMessage] = []
        self.sessions = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _next_session(self) -> int:
        with self._lock:
            self.sessions += 1
            return self.sessions

    def _record(self, command: ReceivedCommand) -> None:
        with self._lock:
            self.commands.append(command)

    def _receive(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def verbs(self, session: int | None = None) -> list[str]:
        return [c.verb for c in self.commands if session is None or c.session == session]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            # The server is stopping with a client still connected. Ending quietly spares
            # asyncio's stream callback a traceback about the cancelled task.
            writer.close()
        finally:
            self._tasks.discard(task)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[FaultSmtpServer]:
        """Serve on the running event loop instead of a thread.

        With client and server in one loop, the order of events is fixed: a reply and the
        hang-up that follows it reach the client together, as from a server that exits at
        once, never racing the client's next write as two threads would.
        """
        server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._serve, LOOPBACK, 0))
        self.port = server.sockets[0].getsockname()[1]
        loop.call_soon(ready.set)
        loop.run_forever()
        server.close()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    def start(self) -> FaultSmtpServer:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("fault SMTP server did not start")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> FaultSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def fault_smtp(script: FaultScript | None = None) -> Iterator[FaultSmtpServer]:
    with FaultSmtpServer(script) as server:
        yield server
