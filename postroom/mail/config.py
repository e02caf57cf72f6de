"""What the SMTP client needs to know about a server: plain data, no Django.

The company master turns its stored settings into a `SmtpServerConfig` (decrypting the
password at the last moment); everything in postroom.mail takes one of these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

IMPLICIT_TLS_PORT = 465  # RFC 8314 §7.3: submissions over implicit TLS


class TlsPolicy(enum.Enum):
    IMPLICIT = "implicit"  # TLS from the first byte (SMTPS)
    STARTTLS_REQUIRED = "starttls_required"  # upgrade with STARTTLS or stop
    STARTTLS_OPPORTUNISTIC = "starttls_opportunistic"  # upgrade when offered, else plain text
    NONE = "none"  # never TLS

    @property
    def is_tls_required(self) -> bool:
        return self in {TlsPolicy.IMPLICIT, TlsPolicy.STARTTLS_REQUIRED}


def resolve_tls_policy(*, port: int, secure_required: bool, tls_mode: str) -> TlsPolicy:
    """Turn the seed's "Secure Connection Required (Y/N)" plus the advanced TLS mode into a policy.

    With mode "auto": Y means TLS is mandatory, implicit on 465 and STARTTLS elsewhere; N means
    STARTTLS when the server offers it. An explicit mode wins, except that Y never allows "none".
    """
    if tls_mode == "implicit":
        return TlsPolicy.IMPLICIT
    if tls_mode == "starttls":
        return TlsPolicy.STARTTLS_REQUIRED
    if tls_mode == "none" and not secure_required:
        return TlsPolicy.NONE
    if secure_required:
        return TlsPolicy.IMPLICIT if port == IMPLICIT_TLS_PORT else TlsPolicy.STARTTLS_REQUIRED
    return TlsPolicy.IMPLICIT if port == IMPLICIT_TLS_PORT else TlsPolicy.STARTTLS_OPPORTUNISTIC


@dataclass(frozen=True)
class Timeouts:
    # RFC 5321 §4.5.3.2: initial 220 greeting 5 min, MAIL/RCPT 5 min, DATA end 10 min; we use a
    # shorter connect timeout since a TCP connect that takes 30 s will not succeed later.
    connect: float = 30
    command: float = 300
    data: float = 600


class AccessTokens(Protocol):
    """Where an OAuth route's access token comes from (postroom.oauth keeps them).

    Raises postroom.mail.auth.TokenUnavailableError, in plain words, when there is none.
    """

    async def get(self, *, renew: bool = False) -> str:
        """A valid token; with `renew`, a new one (the server refused the last)."""
        ...


@dataclass(frozen=True)
class SmtpServerConfig:
    host: str
    port: int
    tls: TlsPolicy
    login: str = ""
    password: str = field(default="", repr=False)  # never in repr, so never in a traceback
    auth_method: str = "auto"  # auto, PLAIN, LOGIN or XOAUTH2
    # XOAUTH2 only: the access tokens, asked for each time a session logs in. Not compared,
    # so a route read again is the same route while its settings are.
    access_tokens: AccessTokens | None = field(default=None, compare=False, repr=False)
    ca_pem: str = ""  # extra trusted CA (an internal relay); empty = the system store
    helo_name: str = ""  # empty = the local host name
    timeouts: Timeouts = Timeouts()
    # The administrator ticked "Allow the password over an unencrypted connection".
    allow_plaintext_auth: bool = False

    @property
    def has_auth(self) -> bool:
        return bool(self.login)

    @property
    def is_oauth(self) -> bool:
        return self.access_tokens is not None

    def may_send_password(self, *, is_encrypted: bool) -> bool:
        """Whether AUTH may go over this connection: the one rule of delivery and the check.

        Secure Connection Required = N and TLS mode None still send mail in plain text to
        relays that need no login; a password crosses the network unencrypted only when the
        administrator said so, since anyone on the path could read and reuse it.
        """
        return is_encrypted or self.allow_plaintext_auth
