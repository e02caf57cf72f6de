"""Logging in to an SMTP server (RFC 4954): which mechanism to use, and the exchange for each.

Delivery and the connection check both log in through `SmtpSession` (postroom.mail.session),
which asks this module, so a server that the check can log in to is one delivery can log in to.
The encodings are aiosmtplib's own helpers (`aiosmtplib.auth`); the password only ever travels
inside the commands written here, never in a reply text, a step or a log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiosmtplib.auth import auth_crammd5_verify, auth_login_encode, auth_plain_encode
from aiosmtplib.errors import SMTPAuthenticationError
from aiosmtplib.response import SMTPResponse

from postroom.mail.replies import ReplyCode

AUTO = "AUTO"
# The order "Automatic" tries: PLAIN and LOGIN first (one round trip, and every server has
# one of them), CRAM-MD5 (RFC 2195) for the servers that offer nothing else. An OAuth
# mechanism (XOAUTH2) needs a token the settings do not hold yet, so it is not chosen.
AUTH_PREFERENCE = ("PLAIN", "LOGIN", "CRAM-MD5")

# Writes one line (CRLF included) and returns the server's reply to it.
Command = Callable[[bytes], Awaitable[SMTPResponse]]


def auth_mechanism_choose(*, wanted: str, offered: Iterable[str]) -> str | None:
    """The mechanism to log in with: `wanted` ("auto" or a name) among those `offered`.

    None when there is none: the server offers no mechanism Postroom knows, or not the one
    the settings force.
    """
    offered_upper = {method.upper() for method in offered}
    wanted = wanted.upper()
    choices = AUTH_PREFERENCE if wanted == AUTO else (wanted,)
    return next(
        (m for m in choices if m in offered_upper and m in AUTH_PREFERENCE),
        None,
    )


async def auth_exchange(
    mechanism: str, *, login: str, password: str, command: Command
) -> SMTPResponse:
    """Run the AUTH exchange of `mechanism` and return the server's last reply (235 = in)."""
    if mechanism == "PLAIN":
        credentials = auth_plain_encode(login, password)
        reply = await command(b"AUTH PLAIN " + credentials + b"\r\n")
        if reply.code == ReplyCode.AUTH_CONTINUE:  # a server that ignores initial responses
            reply = await command(credentials + b"\r\n")
        return reply
    if mechanism == "LOGIN":
        user, secret = auth_login_encode(login, password)
        reply = await command(b"AUTH LOGIN " + user + b"\r\n")
        if reply.code == ReplyCode.AUTH_CONTINUE:
            reply = await command(secret + b"\r\n")
        return reply
    if mechanism == "CRAM-MD5":
        reply = await command(b"AUTH CRAM-MD5\r\n")
        if reply.code != ReplyCode.AUTH_CONTINUE:
            return reply
        try:
            answer = auth_crammd5_verify(login, password, reply.message.strip())
        except SMTPAuthenticationError:
            # RFC 4954 §4: a challenge we cannot read is answered with "*", which cancels.
            return await command(b"*\r\n")
        return await command(answer + b"\r\n")
    raise ValueError(f"no AUTH exchange for {mechanism!r}")
