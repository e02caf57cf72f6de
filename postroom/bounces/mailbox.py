"""The bounce mailbox's clients: IMAP (the maintained `imapclient`) and POP3 (`poplib`).

Both offer what a poll needs and nothing that deletes: list the mail waiting, fetch one mail's
bytes, and put a read mail aside (IMAP moves it to the processed folder; POP3 cannot, so the
poll remembers its UIDL instead). Every failure a person can fix (a wrong port, an untrusted
certificate, a refused login, a missing folder) becomes a `MailboxError` whose message says
what to change. No Django here: the poll (postroom.bounces.polling) brings the settings.
"""

from __future__ import annotations

import base64
import contextlib
import poplib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from postroom.core.errors import PostroomError
from postroom.mail.tls import client_tls_context

# The standard ports: IMAP RFC 9051 §2.1 (993 implicit TLS, 143), POP3 RFC 8314 §7.2 and
# RFC 1939 (995, 110).
DEFAULT_PORTS = {
    ("imap", True): 993,
    ("imap", False): 143,
    ("pop3", True): 995,
    ("pop3", False): 110,
}
# Seconds any one network step may take: a stuck server must not hold the poll's lease.
TIMEOUT_SECONDS = 30.0
# IMAP: the "\\Deleted" flag (RFC 9051 §2.3.2), set only on the original of a copied mail.
DELETED = b"\\Deleted"


class MailboxError(PostroomError):
    """The bounce mailbox could not be read; the message says what to change."""

    code = "bounce_mailbox"


def default_port(*, protocol: str, security: str) -> int:
    return DEFAULT_PORTS[(protocol, security == "tls")]


@dataclass(frozen=True)
class MailboxSettings:
    """How to reach and log in to the bounce mailbox. `secret` returns the password, or an
    access token when `is_oauth` (called again with renew=True when the server refused it)."""

    protocol: str  # "imap" | "pop3"
    host: str
    port: int
    security: str  # "tls" | "starttls" | "none"
    username: str
    secret: Callable[[bool], str]
    is_oauth: bool = False
    ca_pem: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Postroom/Processed"
    timeout: float = TIMEOUT_SECONDS

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class WaitingMail:
    """One mail waiting: `key` names it for ever in this mailbox (SeenMail), `ref` for a
    person (the BounceReport's mailbox_ref)."""

    key: str
    ref: str
    handle: Any  # the IMAP UID or the POP3 message number of this session


class MailboxSession(Protocol):
    def waiting(self) -> list[WaitingMail]: ...
    def fetch(self, mail: WaitingMail) -> bytes: ...
    def put_aside(self, mail: WaitingMail) -> None: ...


@contextlib.contextmanager
def mailbox_open(settings: MailboxSettings) -> Iterator[MailboxSession]:
    """Connect, secure and log in; yield a session; log out. Raises MailboxError."""
    context = client_tls_context(ca_pem=settings.ca_pem)
    session: _ImapSession | _Pop3Session
    with _errors_explained(settings):
        if settings.protocol == "imap":
            session = _ImapSession(settings, context)
        else:
            session = _Pop3Session(settings, context)
    try:
        with _errors_explained(settings):
            session.login()
        yield session
    finally:
        with contextlib.suppress(Exception):  # the server may have gone; nothing is lost
            session.close()


class _ImapSession:
    def __init__(self, settings: MailboxSettings, context: ssl.SSLContext) -> None:
        self.settings = settings
        self.client = imapclient.IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security == "tls",
            ssl_context=context,
            timeout=settings.timeout,
        )
        if settings.security == "starttls":
            self.client.starttls(context)
        self.uidvalidity = 0

    def login(self) -> None:
        s = self.settings
        if s.is_oauth:
            try:
                self.client.oauth2_login(s.username, s.secret(False))
            except LoginError:  # a token the provider revoked early: one new token, once
                self.client.oauth2_login(s.username, s.secret(True))
        else:
            self.client.login(s.username, s.secret(False))
        if not self.client.folder_exists(s.folder):
            raise MailboxError(
                f"The folder “{s.folder}” does not exist in this mailbox. Enter the folder "
                "bounces arrive in (usually INBOX).",
                field="folder",
            )

    def waiting(self) -> list[WaitingMail]:
        selected = self.client.select_folder(self.settings.folder)
        self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        uids = sorted(self.client.search("ALL"))
        return [
            WaitingMail(
                key=f"imap {self.uidvalidity}:{uid} {self.settings.folder}"[:200],
                ref=f"{self.settings.folder} UID {uid}",
                handle=uid,
            )
            for uid in uids
        ]

    def fetch(self, mail: WaitingMail) -> bytes:
        # BODY.PEEK: reading does not set \Seen, so a mail that could not be processed
        # still looks unread to a person.
        with _errors_explained(self.settings):
            data = self.client.fetch([mail.handle], ["BODY.PEEK[]"])
        body = data.get(mail.handle, {}).get(b"BODY[]")
        if body is None:
            raise MailboxError(f"The server sent no content for {mail.ref}: it was removed.")
        return bytes(body)

    def put_aside(self, mail: WaitingMail) -> None:
        """Move the mail to the processed folder (made if missing). Without MOVE (RFC 6851):
        COPY, then \\Deleted and UID EXPUNGE of that one mail (UIDPLUS, RFC 4315), so a copy
        exists before the original goes; without UIDPLUS the original stays, marked seen."""
        with _errors_explained(self.settings):
            target = self._processed_folder()
            if self.client.has_capability("MOVE"):
                self.client.move([mail.handle], target)
                return
            self.client.copy([mail.handle], target)
            if self.client.has_capability("UIDPLUS"):
                self.client.add_flags([mail.handle], [DELETED])
                self.client.uid_expunge([mail.handle])
            else:  # a plain EXPUNGE would remove every \Deleted mail, not only this one
                self.client.add_flags([mail.handle], [imapclient.SEEN])

    def count(self) -> int:
        return int(self.client.folder_status(self.settings.folder, [b"MESSAGES"])[b"MESSAGES"])

    def _processed_folder(self) -> str:
        """The processed folder in the server's own hierarchy delimiter ("." at a Dovecot
        with Maildir++, "/" at Gmail and Microsoft 365), created when missing."""
        listed = self.client.list_folders(directory="", pattern="")
        delimiter = listed[0][1] if listed and listed[0][1] else b"/"
        if isinstance(delimiter, bytes):
            delimiter = delimiter.decode()
        name = self.settings.processed_folder.replace("/", delimiter)
        if not self.client.folder_exists(name):
            self.client.create_folder(name)
            with contextlib.suppress(IMAPClientError):  # so mail clients show it
                self.client.subscribe_folder(name)
        return name

    def close(self) -> None:
        self.client.logout()


class _Pop3Session:
    def __init__(self, settings: MailboxSettings, context: ssl.SSLContext) -> None:
        self.settings = settings
        self.client: poplib.POP3
        if settings.security == "tls":
            self.client = poplib.POP3_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            self.client = poplib.POP3(settings.host, settings.port, timeout=settings.timeout)
            if settings.security == "starttls":
                self.client.stls(context)

    def login(self) -> None:
        s = self.settings
        try:
            if s.is_oauth:
                try:
                    self._xoauth2(s.secret(False))
                except poplib.error_proto:  # a token revoked early: one new token, once
                    self._xoauth2(s.secret(True))
            else:
                self.client.user(s.username)
                self.client.pass_(s.secret(False))
        except poplib.error_proto as error:
            how = "access token" if s.is_oauth else "password"
            raise MailboxError(
                f"The server refused the login of {s.username} ({_server_text(error)}). "
                f"Check the user name and the {how}, and that POP3 is turned on for this "
                "mailbox.",
                field="password",
            ) from error

    def _xoauth2(self, token: str) -> None:
        # poplib has no AUTH command (RFC 5034); the exchange is one line each way, sent
        # with its own helpers. Microsoft answers "+" first and wants the response alone.
        initial = f"user={self.settings.username}\x01auth=Bearer {token}\x01\x01"
        encoded = base64.b64encode(initial.encode()).decode()
        self.client._putcmd("AUTH XOAUTH2")  # type: ignore[attr-defined]
        reply: bytes = self.client._getline()[0]  # type: ignore[attr-defined]
        if reply.startswith(b"+") and not reply.startswith(b"+OK"):
            self.client._putcmd(encoded)  # type: ignore[attr-defined]
            reply = self.client._getresp()  # type: ignore[attr-defined]
        if not reply.startswith(b"+OK"):
            with contextlib.suppress(Exception):  # a JSON error challenge: end the exchange
                self.client._putcmd("")  # type: ignore[attr-defined]
                self.client._getresp()  # type: ignore[attr-defined]
            raise poplib.error_proto(reply)

    def waiting(self) -> list[WaitingMail]:
        listing = self.client.uidl()[1]
        mails = []
        for line in listing:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            mails.append(WaitingMail(key=f"pop3 {uidl}"[:200], ref=f"UIDL {uidl}", handle=number))
        return mails

    def fetch(self, mail: WaitingMail) -> bytes:
        with _errors_explained(self.settings):
            lines = self.client.retr(int(mail.handle))[1]
        # RETR's lines come without their CRLF and with the dot-stuffing already undone.
        return b"\r\n".join(lines) + b"\r\n"

    def put_aside(self, mail: WaitingMail) -> None:
        """Nothing: POP3 cannot move or flag, and Postroom never sends DELE."""

    def count(self) -> int:
        return int(self.client.stat()[0])

    def close(self) -> None:
        self.client.quit()


def mailbox_count(settings: MailboxSettings) -> int:
    """Log in and count the mail in the folder (IMAP) or mailbox (POP3). Raises MailboxError."""
    with mailbox_open(settings) as session, _errors_explained(settings):
        assert isinstance(session, _ImapSession | _Pop3Session)
        return session.count()


@contextlib.contextmanager
def _errors_explained(settings: MailboxSettings) -> Iterator[None]:
    """Turn what the network and the server said into a MailboxError that says what to do."""
    try:
        yield
    except PostroomError:  # already in words: a missing password, an OAuth sign-in to renew
        raise
    except Exception as error:
        raise MailboxError(error_explain(error, settings), field=_field_of(error)) from error


def _field_of(error: Exception) -> str | None:
    if isinstance(error, LoginError):
        return "password"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "ca_certificate"
    if isinstance(error, socket.gaierror):
        return "host"
    if isinstance(error, ConnectionRefusedError):
        return "port"
    return None


def error_explain(error: Exception, settings: MailboxSettings) -> str:
    """One failure in plain words, with what to change."""
    where, login = settings.where, settings.username
    if isinstance(error, socket.gaierror):
        return f"The host name {settings.host} could not be found. Check the server address."
    if isinstance(error, ConnectionRefusedError):
        return (
            f"Nothing answers at {where}: the connection was refused. Check the port "
            f"({_ports_hint(settings)})."
        )
    if isinstance(error, TimeoutError | socket.timeout):
        return (
            f"{where} did not answer within {settings.timeout:.0f} seconds. Check the address "
            "and port, that a firewall lets Postroom reach it, and that the security setting "
            f"matches the port: {_ports_hint(settings)}."
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"The certificate of {where} is not trusted: {error.verify_message}. If the "
            "server uses a company CA, paste that CA's certificate under “CA certificate”."
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS with {where} failed ({error.reason or error}). The security setting may not "
            f"match the port: {_ports_hint(settings)}."
        )
    if isinstance(error, LoginError):
        how = "access token" if settings.is_oauth else "password"
        return (
            f"The server refused the login of {login} ({_server_text(error)}). Check the "
            f"user name and the {how}."
        )
    if isinstance(error, poplib.error_proto):
        return f"The POP3 server {where} answered: {_server_text(error)}."
    if isinstance(error, IMAPClientError) and "STARTTLS" in str(error).upper():
        return f"{where} does not offer STARTTLS: choose TLS from the first byte, or port 993."
    if isinstance(error, ConnectionError | EOFError | OSError):
        return (
            f"The connection to {where} broke off ({error}). If this persists, check that "
            f"the security setting matches the port: {_ports_hint(settings)}."
        )
    return f"The mail server {where} answered something Postroom did not expect: {error}"


def _server_text(error: Exception) -> str:
    """What the server said, without Python's b'' and POP3's -ERR."""
    said = error.args[0] if error.args else error
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    text = text.removeprefix("-ERR").strip().rstrip(".")
    return text or "no reason given"


def _ports_hint(settings: MailboxSettings) -> str:
    if settings.protocol == "imap":
        return "IMAP uses 993 with TLS from the first byte, 143 with STARTTLS or none"
    return "POP3 uses 995 with TLS from the first byte, 110 with STARTTLS or none"
