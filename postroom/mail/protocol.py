"""The client side of an SMTP connection: bytes out, parsed replies in, pipelining-safe.

aiosmtplib's `SMTPProtocol` parses replies well (line and size limits, multi-line replies)
but expects one reply per awaited command: replies that arrive before they are awaited are
dropped, and a second reply already in its buffer is not looked at until more bytes come.
With PIPELINING (RFC 2920) the server answers MAIL, every RCPT and DATA in one burst, so this
subclass parses every complete reply as it arrives into a queue and hands them out in order.

It also counts the replies it is owed: a reply nobody asked for (a desynchronised or hostile
server) poisons the connection instead of being paired with the next command, which could
turn a refusal into a "sent".
"""

from __future__ import annotations

import asyncio
import collections

from aiosmtplib.errors import (
    SMTPReadTimeoutError,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus


class ReplyQueueProtocol(SMTPProtocol):
    """An `SMTPProtocol` whose replies are queued as they arrive and read with `read_reply`.

    Use `send(data, replies=n)` to write commands that owe `n` replies, then `read_reply()`
    `n` times. The buffer of an incomplete reply is bounded by aiosmtplib's limits
    (8192-byte lines, 32 KiB per reply), so a server streaming a huge line costs no memory.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(loop=loop)
        self._replies: collections.deque[SMTPResponse] = collections.deque()
        self._owed = 0
        self._failure: BaseException | None = None
        self._wakeup: asyncio.Future[None] | None = None
        # Bytes still in our write buffer when the connection failed: if any, the end of what
        # was written (the final "." of a message) never left this process.
        self.unsent_at_failure = 0

    # asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owed = 1  # the greeting (RFC 5321 §3.1)

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return  # the connection is being torn down; nothing more is read
        self._buffer.extend(data)
        try:
            while (reply := self._read_response_from_buffer()) is not None:
                if len(self._replies) >= self._owed:
                    raise SMTPResponseException(  # noqa: TRY301 - an extra reply is garbage, handled as the parser's own
                        SMTPStatus.invalid_response, f"Unexpected reply from the server: {reply}"
                    )
                self._replies.append(reply)
        except SMTPResponseException as error:  # garbage, a line over 8192 bytes, extra reply
            self._fail(error, is_out_of_step=True)
            return
        if len(self._buffer) > MAX_RESPONSE_LENGTH:
            too_long = SMTPResponseException(SMTPStatus.invalid_response, "Response too long")
            self._fail(too_long, is_out_of_step=True)
            return
        self._wake()

    def eof_received(self) -> bool:
        self._fail(SMTPServerDisconnected("The server closed the connection"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        error = SMTPServerDisconnected("The connection was lost")
        if exc is not None:
            error.__cause__ = exc
        self._fail(error)

    # For the connection ----------------------------------------------------------------------

    @property
    def failure(self) -> BaseException | None:
        """Why the connection can no longer be used, once it cannot."""
        return self._failure

    @property
    def is_usable(self) -> bool:
        return self._failure is None and self.is_connected

    @property
    def unsent_bytes(self) -> int:
        """Bytes written but still in our buffer, not yet handed to the operating system."""
        if self._failure is not None:
            return self.unsent_at_failure
        size = getattr(self.transport, "get_write_buffer_size", None)
        return int(size()) if size is not None else 0

    def send(self, data: bytes, *, replies: int) -> None:
        """Write `data`, which holds commands owing `replies` replies in total."""
        if self._failure is not None:
            raise self._failure
        self._owed += replies
        self.write(data)

    async def read_reply(self, timeout: float) -> SMTPResponse:
        """Return the next reply owed, waiting at most `timeout` seconds for it to arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._replies:
            if self._failure is not None:
                raise self._failure
            self._wakeup = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wakeup
            except TimeoutError as error:
                raise SMTPReadTimeoutError("Timed out waiting for the server's reply") from error
            finally:
                self._wakeup = None
        self._owed -= 1
        return self._replies.popleft()

    def ensure_nothing_buffered(self) -> None:
        """Fail if bytes came after the last reply read (RFC 3207 §4.2: nothing may follow
        the reply to STARTTLS in plain text; what does is a possible injection)."""
        if self._replies or self._buffer:
            error = SMTPResponseException(
                SMTPStatus.invalid_response, "The server sent data after its STARTTLS reply"
            )
            self._fail(error, is_out_of_step=True)

    def abort(self) -> None:
        """Drop the connection at once, without QUIT."""
        self._fail(SMTPServerDisconnected("Connection closed by Postroom"))

    def _fail(self, error: BaseException, *, is_out_of_step: bool = False) -> None:
        if is_out_of_step:
            # Once the stream is out of step, no reply already queued can be trusted to
            # answer the command it would be paired with.
            self._replies.clear()
        if self._failure is None:
            # A transport that is already closing has dropped its buffer: count it as sent.
            self.unsent_at_failure = self.unsent_bytes
            self._failure = error
            del self._buffer[:]
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
