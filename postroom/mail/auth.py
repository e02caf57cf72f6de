"""Logging in to an SMTP server (RFC 4954): which mechanism to use, and the exchange for each.

Delivery and the connection check both log in through `SmtpSession` (postroom.mail.session),
which asks this module, so a server that the check can log in to is one delivery can log in to.
The encodings are aiosmtplib's own helpers (`aiosmtplib.auth`); the password only ever travels
inside the commands written here, never in a reply text, a step or a log.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterable

from aiosmtplib.auth import auth_crammd5_verify, auth_login_encode, auth_plain_encode
from aiosmtplib.errors import SMTPAuthenticationError
from aiosmtplib.response import SMTPResponse

from postroom.core.errors import PostroomError
from postroom.mail.replies import ReplyCode

AUTO = "AUTO"
# The order "Automatic" tries: PLAIN and LOGIN first (one round trip, and every server has
# one of them), CRAM-MD5 (RFC 2195) for the servers that offer nothing else. XOAUTH2 needs
# an OAuth sign-in (postroom.oauth), so it is used only when the settings say so.
AUTH_PREFERENCE = ("PLAIN", "LOGIN", "CRAM-MD5")
XOAUTH2 = "XOAUTH2"


class TokenUnavailableError(PostroomError):
    """No OAuth access token could be had (the provider refused, or is unreachable)."""

    code = "oauth_token"


# Writes one line (CRLF included) and returns the server's reply to it.
Command = Callable[[bytes], Awaitable[SMTPResponse]]


def auth_mechanism_choose(*, wanted: str, offered: Iterable[str]) -> str | None:
    """The mechanism to log in with: `wanted` ("auto" or a name) among those `offered`.

    None when there is none: the server offers no mechanism Postroom knows, or not the one
    the settings force.
    """
    offered_upper = {method.upper() for method in offered}
    wanted = wanted.upper()
    if wanted == XOAUTH2:
        return XOAUTH2 if XOAUTH2 in offered_upper else None
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


async def xoauth2_exchange(*, login: str, token: str, command: Command) -> SMTPResponse:
    """Log in with an OAuth access token: Google's and Microsoft's XOAUTH2 mechanism.

    A refused token gets a 334 whose text is a base64 JSON error (the `status` a bearer
    token got); the client answers with an empty line and the server ends with 535.
    """
    initial = f"user={login}\x01auth=Bearer {token}\x01\x01"
    encoded = base64.b64encode(initial.encode())
    reply = await command(b"AUTH XOAUTH2 " + encoded + b"\r\n")
    if reply.code == ReplyCode.AUTH_CONTINUE:
        if _is_error_challenge(reply.message):
            return await command(b"\r\n")
        reply = await command(encoded + b"\r\n")  # a server that wants it on its own line
        if reply.code == ReplyCode.AUTH_CONTINUE:
            return await command(b"\r\n")
    return reply


def _is_error_challenge(challenge: str) -> bool:
    try:
        decoded = json.loads(base64.b64decode(challenge.strip(), validate=True))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "status" in decoded
