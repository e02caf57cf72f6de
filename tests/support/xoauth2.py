"""SASL XOAUTH2, the OAuth 2.0 login of Gmail's and Outlook's SMTP servers, for tests.

The client sends "user=<login>^Aauth=Bearer <access token>^A^A" (^A is the byte 0x01),
base64-encoded, on the AUTH line or after an empty 334 challenge. Gmail refuses a token with a
334 whose text is a JSON error, waits for the client's empty line, then replies 535 (Google's
"OAuth 2.0 Mechanism" page; Microsoft documents the same client string). ScriptedSmtpServer
(tests/support/smtpd.py) reads it on the server side; tests use `xoauth2_response` as clients.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiosmtpd.smtp import MISSING, SMTP

GMAIL_ERROR_CHALLENGE = json.dumps(
    {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"},
    separators=(",", ":"),
)


def xoauth2_response(login: str, token: str) -> str:
    """What the client sends, before base64 (smtplib's `auth` encodes it)."""
    return f"user={login}\x01auth=Bearer {token}\x01\x01"


def parse_xoauth2_response(response: bytes) -> tuple[str, str] | None:
    """Login and token from a decoded client response, or None when it is malformed."""
    text = response.decode("utf-8", errors="replace")
    if not text.endswith("\x01\x01"):
        return None
    fields = dict(part.partition("=")[::2] for part in text[:-2].split("\x01"))
    scheme, _, token = fields.get("auth", "").partition(" ")
    login = fields.get("user", "")
    if not login or scheme.lower() != "bearer" or not token:
        return None
    return login, token


async def read_xoauth2_response(smtp: SMTP, args: list[str]) -> tuple[str, str] | None:
    """Login and token of an AUTH XOAUTH2 command, from its argument or from the line after
    an empty challenge. None when the client sent "*" or something malformed: aiosmtpd or
    this function has then answered it with a 501."""
    if len(args) == 1:
        response = await smtp.challenge_auth("")
        if response is MISSING:
            return None
    else:
        try:
            response = base64.b64decode(args[1], validate=True)
        except binascii.Error:
            await smtp.push("501 5.5.2 Can't decode base64")
            return None
    assert isinstance(response, bytes)
    credentials = parse_xoauth2_response(response)
    if credentials is None:
        await smtp.push("501 5.5.2 Can't parse the XOAUTH2 response")
    return credentials
