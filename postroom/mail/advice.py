"""Turn what went wrong talking to an SMTP server into plain words and what to change.

Pure functions: they take what was observed (an OSError, an ssl error, a server reply and the
phase it came in) and return a `Diagnosis`. No sockets here, so every mapping is unit-tested.
Settings are named as the Company page names them ("SMTP Communication Port", "Advanced").
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import socket
import ssl
from dataclasses import dataclass

from postroom.mail.check_report import server_text_excerpt
from postroom.mail.config import IMPLICIT_TLS_PORT
from postroom.mail.tls import CertificateInfo

SUBMISSION_PORT = 587  # RFC 6409 §3.1: message submission, STARTTLS
RELAY_PORT = 25  # RFC 5321 §4.5.4: server-to-server relay

_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
# OpenSSL reasons seen when one side speaks TLS and the other plain text.
_PLAIN_TEXT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "RECORD_TOO_LARGE",
    }
)
# X509_V_ERR_* codes from OpenSSL's x509_vfy.h.
_CERT_EXPIRED, _CERT_NOT_YET_VALID = 10, 9
_SELF_SIGNED_LEAF, _SELF_SIGNED_IN_CHAIN = 18, 19
_UNTRUSTED_ISSUER_CODES = frozenset({2, 20, 21})  # issuer unknown / not in the trust store
_NAME_MISMATCH_CODES = frozenset({62, 64})  # host name / IP address mismatch


@dataclass(frozen=True)
class Diagnosis:
    code: str  # stable: tests, the JSON output and the API key on it
    summary: str  # what is wrong, in plain words
    advice: str  # what to change


# Providers whose login needs an app password instead of the account password.
_APP_PASSWORD_ADVICE = {
    ("gmail.com", "googlemail.com", "google.com"): (
        "Gmail does not accept the normal Google password here. Turn on 2-Step Verification "
        "for the Google account, create an app password (Google Account → Security → App "
        "passwords) and enter those 16 letters as the SMTP Authentication Password."
    ),
    ("yahoo.com", "yahoo.co.jp", "aol.com"): (
        "Yahoo and AOL need an app password: Account Security → Generate app password, then "
        "enter it as the SMTP Authentication Password."
    ),
    ("me.com", "icloud.com", "mac.com"): (
        "iCloud needs an app-specific password: appleid.apple.com → Sign-In and Security → "
        "App-Specific Passwords. The login is the full iCloud email address."
    ),
    ("zoho.com", "zoho.eu", "zoho.in"): (
        "Zoho accounts with two-factor authentication need an application-specific password "
        "(Zoho Accounts → Security → App Passwords)."
    ),
    ("fastmail.com",): (
        "Fastmail needs an app password with SMTP access (Settings → Privacy & Security → "
        "App passwords)."
    ),
}
_MICROSOFT_DOMAINS = ("office365.com", "outlook.com", "hotmail.com", "live.com", "microsoft.com")
_BASIC_AUTH_OFF_ADVICE = (
    'Microsoft 365 has password login for SMTP ("Authenticated SMTP") turned off for this '
    "mailbox or the whole organisation. An administrator can turn it on in the Microsoft 365 "
    "admin center (Users → Active users → the mailbox → Mail → Manage email apps → "
    "Authenticated SMTP) and must make sure Security Defaults do not block it. Microsoft is "
    "retiring password login for SMTP, so switching to OAuth (XOAUTH2) is the lasting fix."
)
_ENCRYPT_ADVICE = (
    "Set SMTP Secure Connection Required to Y (or, under Advanced, TLS mode to STARTTLS or "
    "Automatic) so Postroom encrypts the connection before logging in or sending."
)
# The Company page's name for SmtpServerConfig.allow_plaintext_auth.
ALLOW_PLAINTEXT_AUTH = "Allow my password over an unencrypted connection"
_TLS_PORTS_ADVICE = (
    f"Port {IMPLICIT_TLS_PORT} expects TLS from the first byte (implicit TLS); port "
    f"{SUBMISSION_PORT} starts in plain text and upgrades with STARTTLS."
)


def _is_under(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _is_microsoft(host: str) -> bool:
    return _is_under(host, _MICROSOFT_DOMAINS)


def app_password_advice(host: str) -> str | None:
    """The provider's app-password instructions when `host` belongs to one that needs them."""
    for domains, advice in _APP_PASSWORD_ADVICE.items():
        if _is_under(host, domains):
            return advice
    return None


def enhanced_status(message: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply text ("5.7.8"), if any."""
    match = _ENHANCED_STATUS.match(message)
    return match.group(1) if match else None


def reply_text(code: int, message: str) -> str:
    """One line for a transcript: multi-line replies joined with " / ", cut to an excerpt."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"{code} {server_text_excerpt(' / '.join(lines))}".strip()


# --- Before SMTP: name, TCP, TLS -------------------------------------------------------------


def diagnose_dns_failure(*, host: str, error: OSError) -> Diagnosis:
    if isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN:
        return Diagnosis(
            "dns_unavailable",
            f"The name {host} could not be looked up: the DNS server did not answer.",
            "Check this machine's network and DNS settings, then try again.",
        )
    return Diagnosis(
        "dns_failed",
        f"The name {host} does not exist (DNS lookup failed).",
        "Check the SMTP Server Address for typos: it is a host name like smtp.example.com, "
        "without https:// or an email address. Your provider's help page names it.",
    )


def diagnose_connect_failure(*, host: str, port: int, error: OSError, timeout: float) -> Diagnosis:
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return Diagnosis(
            "connection_refused",
            f"Nothing is listening on {host} port {port}: the connection was refused.",
            "Check the SMTP Communication Port (usually 587 for STARTTLS or 465 for implicit "
            "TLS) and the SMTP Server Address. If both are right, the mail server is down or a "
            "firewall rejects the connection.",
        )
    if isinstance(error, TimeoutError):
        return Diagnosis(
            "connect_timeout",
            f"{host} did not answer on port {port} within {timeout:g} s.",
            "A firewall is probably dropping the connection: many networks and cloud providers "
            f"block outgoing port {RELAY_PORT}. Check the port, try {SUBMISSION_PORT} or "
            f"{IMPLICIT_TLS_PORT}, or ask your network administrator to allow it.",
        )
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Diagnosis(
            "host_unreachable",
            f"{host} cannot be reached from this machine (no route to it).",
            "Check this machine's network connection and the SMTP Server Address.",
        )
    return Diagnosis(
        "connect_failed",
        f"Could not connect to {host} port {port}: {error.strerror or error}.",
        "Check the SMTP Server Address and Communication Port, and this machine's network.",
    )


def _ssl_reason(error: BaseException) -> str:
    return str(getattr(error, "reason", "") or "").upper()


def is_plain_text_tls_error(error: BaseException) -> bool:
    """True if a TLS handshake failed because the other side spoke plain text."""
    return isinstance(error, ssl.SSLError) and _ssl_reason(error) in _PLAIN_TEXT_TLS_REASONS


def diagnose_tls_on_plain_port(*, port: int, plain_greeting: str | None) -> Diagnosis:
    """Implicit TLS was tried on a port that speaks plain SMTP (e.g. 587): WRONG_VERSION_NUMBER."""
    said = server_text_excerpt(plain_greeting or "")
    heard = f' It answered in plain text: "{said}".' if said else ""
    return Diagnosis(
        "tls_on_plain_port",
        f"Port {port} does not speak TLS from the first byte (the TLS handshake failed with "
        f"WRONG_VERSION_NUMBER).{heard}",
        f"Postroom is set to implicit TLS, but this port uses STARTTLS or no TLS. Under "
        f"Advanced set TLS mode to Automatic or STARTTLS, or change the port to "
        f"{IMPLICIT_TLS_PORT}. {_TLS_PORTS_ADVICE}",
    )


def diagnose_greeting_timeout(*, port: int, timeout: float, speaks_implicit_tls: bool) -> Diagnosis:
    if speaks_implicit_tls:
        return Diagnosis(
            "plain_on_tls_port",
            f"Port {port} expects TLS from the first byte (implicit TLS), but Postroom spoke "
            "plain SMTP, so the server never greeted.",
            f"Under Advanced set TLS mode to Implicit TLS (or use port {IMPLICIT_TLS_PORT} with "
            f"Secure Connection Required = Y), or use port {SUBMISSION_PORT} with STARTTLS. "
            f"{_TLS_PORTS_ADVICE}",
        )
    return Diagnosis(
        "greeting_timeout",
        f"The server accepted the connection on port {port} but sent no greeting within "
        f"{timeout:g} s.",
        f"If the port expects TLS from the first byte (usually {IMPLICIT_TLS_PORT}), set TLS "
        "mode to Implicit TLS under Advanced. Otherwise the server is overloaded, or a firewall "
        "or antivirus proxy holds the connection; try again, or raise the connect timeout.",
    )


def diagnose_tls_timeout(*, port: int, timeout: float) -> Diagnosis:
    return Diagnosis(
        "tls_handshake_timeout",
        f"The TLS handshake on port {port} did not finish within {timeout:g} s.",
        f"The port may not speak TLS at all (it may wait for plain SMTP): under Advanced set "
        f"TLS mode to Automatic or STARTTLS, or use port {IMPLICIT_TLS_PORT}. "
        f"{_TLS_PORTS_ADVICE}",
    )


def diagnose_certificate(
    *,
    host: str,
    error: ssl.SSLCertVerificationError,
    certificate: CertificateInfo | None,
    now: dt.datetime | None = None,
) -> Diagnosis:
    """Explain a certificate that failed verification, using what it says when we have it."""
    now = now or dt.datetime.now(dt.UTC)
    code, shown = error.verify_code, certificate  # what the server showed, if fetched
    if code in _NAME_MISMATCH_CODES:
        names = shown.names_text if shown else "another name"
        example = shown.names[0] if shown and shown.names else "the documented host name"
        return Diagnosis(
            "certificate_wrong_host",
            f"The server's certificate is issued for {names}, not {host}.",
            f"Enter the name the certificate is issued for as the SMTP Server Address (for "
            f"example {example}), not an IP address or an alias. If {host} is right, the "
            "server's administrator must install a certificate that names it.",
        )
    if code == _CERT_EXPIRED or (
        code not in _UNTRUSTED_ISSUER_CODES and shown and shown.is_expired(at=now)
    ):
        expired = f" on {shown.not_after:%Y-%m-%d}" if shown else ""
        return Diagnosis(
            "certificate_expired",
            f"The server's certificate expired{expired}.",
            "The mail server's administrator must renew its certificate. Postroom does not "
            "send over a connection it cannot verify.",
        )
    if code == _CERT_NOT_YET_VALID:
        return Diagnosis(
            "certificate_not_yet_valid",
            "The server's certificate is not valid yet.",
            "Check this machine's clock and time zone; if it is right, the server's "
            "administrator installed a certificate dated in the future.",
        )
    if code in _UNTRUSTED_ISSUER_CODES or code in (_SELF_SIGNED_LEAF, _SELF_SIGNED_IN_CHAIN):
        return _diagnose_untrusted(shown, code, now)
    return Diagnosis(
        "certificate_invalid",
        f"The server's certificate failed verification: {error.verify_message}.",
        "Ask the mail server's administrator to fix its certificate; for an internal relay "
        "with its own CA, paste that CA under Advanced → Custom CA certificate.",
    )


def _diagnose_untrusted(shown: CertificateInfo | None, code: int, now: dt.datetime) -> Diagnosis:
    also_expired = (
        f" It also expired on {shown.not_after:%Y-%m-%d}."
        if shown and shown.is_expired(at=now)
        else ""
    )
    if code == _SELF_SIGNED_LEAF or (shown and shown.is_self_signed):
        what = "a self-signed certificate"
    else:
        issuer = shown.issuer_common_name or shown.issuer if shown else "an unknown authority"
        what = (
            f"a certificate signed by {issuer}, a certificate authority this machine does not trust"
        )
    return Diagnosis(
        "certificate_untrusted",
        f"The server shows {what}.{also_expired}",
        "If this is your company's own relay, paste its CA certificate (PEM) under Advanced → "
        "Custom CA certificate. A public provider never needs this: then check the SMTP Server "
        "Address, and whether an antivirus or proxy intercepts TLS on this network.",
    )


def diagnose_tls_failure(*, port: int, error: ssl.SSLError) -> Diagnosis:
    """A TLS handshake failure that is neither plain text nor the certificate."""
    reason = _ssl_reason(error)
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        return Diagnosis(
            "tls_version_too_old",
            "The server only speaks an old TLS version (1.0 or 1.1) that is no longer safe.",
            "Ask the mail server's administrator to enable TLS 1.2 or 1.3.",
        )
    return Diagnosis(
        "tls_failed",
        f"The TLS handshake on port {port} failed: {reason or error}.",
        f"Check the TLS mode under Advanced against the port. {_TLS_PORTS_ADVICE}",
    )


# --- SMTP conversation ----------------------------------------------------------------------


def diagnose_disconnected(*, phase: str) -> Diagnosis:
    return Diagnosis(
        "disconnected",
        f"The server closed the connection during {phase}.",
        "Servers hang up like this when they refuse this machine's address or TLS settings. "
        "Try again; if it repeats, check the TLS mode and port, and ask the server's "
        "administrator what their log says.",
    )


def diagnose_command_timeout(*, phase: str, timeout: float) -> Diagnosis:
    return Diagnosis(
        "command_timeout",
        f"The server did not answer {phase} within {timeout:g} s.",
        "The server is overloaded or a proxy holds the connection. Try again later, or raise "
        "the command timeout under Advanced.",
    )


def diagnose_starttls_not_offered(*, port: int, is_required: bool, has_login: bool) -> Diagnosis:
    if not is_required:
        secret = " and the password" if has_login else ""
        return Diagnosis(
            "starttls_not_offered_plaintext",
            f"The server does not offer STARTTLS on port {port}: mail{secret} would travel "
            "unencrypted.",
            f"Prefer an encrypted port (587 with STARTTLS or {IMPLICIT_TLS_PORT} with implicit "
            "TLS) and set SMTP Secure Connection Required to Y. Keep N only for a relay on your "
            "own network.",
        )
    return Diagnosis(
        "starttls_not_offered",
        f"Encryption is required, but the server does not offer STARTTLS on port {port}. "
        "Postroom stopped before logging in or sending anything.",
        f"If the port is {IMPLICIT_TLS_PORT} or another implicit-TLS port, set TLS mode to "
        f"Implicit TLS under Advanced; otherwise use port {SUBMISSION_PORT} (STARTTLS). Only for "
        "a relay inside your own network may you set SMTP Secure Connection Required to N.",
    )


def diagnose_starttls_refused(*, code: int, message: str) -> Diagnosis:
    temporary = "temporarily " if 400 <= code < 500 else ""
    return Diagnosis(
        "starttls_refused",
        f"The server offers STARTTLS but {temporary}refused to start it "
        f"({reply_text(code, message)}). Postroom does not continue in plain text.",
        "The server's TLS setup is broken (for example a missing certificate) or it is "
        "overloaded. Try again later; if it repeats, ask the server's administrator, or use "
        f"port {IMPLICIT_TLS_PORT} with implicit TLS if the server offers it.",
    )


def diagnose_auth_not_offered(*, is_encrypted: bool, offers_starttls: bool, port: int) -> Diagnosis:
    if not is_encrypted and offers_starttls:
        return Diagnosis(
            "auth_needs_tls",
            "The server offers login only after STARTTLS, and Postroom is set not to use TLS.",
            "Under Advanced set TLS mode to Automatic (or STARTTLS).",
        )
    return Diagnosis(
        "auth_not_offered",
        f"A login is set, but the server does not offer AUTH on port {port}.",
        f"Port {RELAY_PORT} usually accepts mail only for the server's own domains: use the "
        f"submission port {SUBMISSION_PORT} or {IMPLICIT_TLS_PORT}. If this relay accepts mail "
        "from your network without login, clear the SMTP Authentication Login.",
    )


def diagnose_auth_mechanism(*, wanted: str, offered: list[str]) -> Diagnosis:
    offered_text = " ".join(offered) or "none"
    if wanted != "auto":
        return Diagnosis(
            "auth_method_not_offered",
            f"Authentication method {wanted} is chosen, but the server offers {offered_text}.",
            "Under Advanced set the authentication method to Automatic or to one the server "
            "offers.",
        )
    return Diagnosis(
        "auth_method_unsupported",
        f"The server offers only {offered_text}; Postroom logs in with PLAIN or LOGIN.",
        "If the server offers only XOAUTH2 (OAuth, as Microsoft 365 and Gmail can), password "
        "login is switched off for this account: enable it at the provider or use OAuth.",
    )


def diagnose_reply(
    *, phase: str, code: int, message: str, host: str, login: str = "", address: str = ""
) -> Diagnosis:
    """Explain a refusal from the server. `phase` is AUTH, MAIL, RCPT, DATA or GREETING."""
    reply = _Reply(
        phase=phase,
        code=code,
        status=enhanced_status(message) or "",
        lowered=message.lower(),
        said=reply_text(code, message),
        host=host,
        login=login,
        address=address,
    )
    for rule in _REPLY_RULES:
        diagnosis = rule(reply)
        if diagnosis is not None:
            return diagnosis
    return _diagnose_other(phase, code, reply.said)


@dataclass(frozen=True)
class _Reply:
    phase: str
    code: int
    status: str  # enhanced status code, "" when the server sends none
    lowered: str  # the reply text in lower case, for matching
    said: str  # "535 5.7.8 ...", for the summary
    host: str
    login: str
    address: str


def _basic_auth_disabled(r: _Reply) -> Diagnosis | None:
    is_disabled_text = "basic authentication is disabled" in r.lowered or (
        "smtpclientauthentication is disabled" in r.lowered
    )
    is_microsoft_auth_refusal = r.phase == "AUTH" and r.status == "5.7.3"
    if r.status in ("5.7.139", "5.7.30") or is_disabled_text or is_microsoft_auth_refusal:
        maybe_password = (
            " (Microsoft also answers 5.7.3 to a wrong password: check it too.)"
            if r.status == "5.7.3"
            else ""
        )
        return Diagnosis(
            "basic_auth_disabled",
            f"The server refused password login: basic authentication is disabled ({r.said}).",
            _BASIC_AUTH_OFF_ADVICE + maybe_password,
        )
    return None


def _app_password_required(r: _Reply) -> Diagnosis | None:
    # Gmail: 534 5.7.9 "Application-specific password required"; 534 5.7.14 "log in via
    # your web browser".
    wants_app_password = r.status in ("5.7.9", "5.7.14") or "application-specific" in r.lowered
    if r.phase == "AUTH" and wants_app_password:
        return Diagnosis(
            "app_password_required",
            f"The provider wants an app password, not the account password ({r.said}).",
            app_password_advice(r.host)
            or (
                "Create an app password in the mail account's security settings and enter it "
                "as the SMTP Authentication Password."
            ),
        )
    return None


def _wrong_password(r: _Reply) -> Diagnosis | None:
    if r.phase != "AUTH" or not (r.code == 535 or r.status == "5.7.8"):
        return None
    advice = (
        "Check the SMTP Authentication Login (often the full email address) and enter the "
        "password again: the field is write-only, so type it and Save."
    )
    provider = app_password_advice(r.host)
    if provider:
        advice = f"{advice} {provider}"
    elif _is_microsoft(r.host):
        advice = (
            f"{advice} Microsoft 365: if the password is right, Authenticated SMTP may be off "
            "for the mailbox or blocked by multi-factor authentication."
        )
    return Diagnosis(
        "wrong_password",
        f"The server rejected the login {r.login!r}: wrong user name or password ({r.said}).",
        advice,
    )


def _encryption_required(r: _Reply) -> Diagnosis | None:
    asks_starttls = "starttls" in r.lowered and r.code in (530, 550, 554)
    if asks_starttls or r.code == 538 or r.status == "5.7.11":
        return Diagnosis(
            "encryption_required",
            f"The server accepts this only over an encrypted connection ({r.said}).",
            _ENCRYPT_ADVICE,
        )
    return None


def _auth_required(r: _Reply) -> Diagnosis | None:
    if r.phase not in ("MAIL", "RCPT", "DATA"):
        return None
    asks_login = "authentica" in r.lowered or "not authenticated" in r.lowered
    if r.code == 530 or r.status == "5.7.57" or (asks_login and r.status.startswith("5.7")):
        return Diagnosis(
            "auth_required",
            f"The server wants a login before it accepts mail ({r.said}).",
            "Fill in SMTP Authentication Login and Password (your provider's mailbox login).",
        )
    return None


_SENDER_REFUSED_TEXT = re.compile(
    r"not owned|sender address rejected|send ?as|on behalf|not (?:allowed|authori[sz]ed|permitted)"
)


def _sender_not_allowed(r: _Reply) -> Diagnosis | None:
    if r.phase != "MAIL":
        return None
    if (
        r.code == 553
        or r.status == "5.7.60"
        or (r.status.startswith("5.7") and _SENDER_REFUSED_TEXT.search(r.lowered))
    ):
        who = f"the login {r.login!r}" if r.login else "this connection"
        return Diagnosis(
            "sender_not_allowed",
            f"The server does not let {who} send as {r.address or 'this address'} ({r.said}).",
            "Give the login permission to send as this address at your provider (Microsoft "
            "365: a Send As permission on the mailbox; Gmail: add it under Settings → Accounts → "
            "Send mail as; your own relay: its sender login map), or change the address in the "
            "User Master or company email address to one the login owns.",
        )
    return None


_RELAY_DENIED_TEXT = re.compile(
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|"
    r"unable to relay|not permitted to relay"
)


def _relay_denied(r: _Reply) -> Diagnosis | None:
    if r.phase != "RCPT":
        return None
    if (
        r.status == "5.7.54"
        or _RELAY_DENIED_TEXT.search(r.lowered)
        or (r.code == 554 and r.status == "5.7.1")
    ):
        return Diagnosis(
            "relay_denied",
            f"The server refused to pass the message on to {r.address or 'the recipient'}: it "
            f"does not relay mail for this connection ({r.said}).",
            "Fill in SMTP Authentication Login and Password so the server knows who sends "
            "(servers relay to other domains only for logged-in users), or ask the server's "
            "administrator to allow relaying from this machine's address. Port 25 of a "
            f"provider's mail exchanger only accepts its own domains: use {SUBMISSION_PORT}.",
        )
    return None


def _recipient_unknown(r: _Reply) -> Diagnosis | None:
    if r.phase == "RCPT" and (
        r.status in ("5.1.1", "5.1.10")
        or r.code in (550, 551)
        and ("unknown" in r.lowered or "does not exist" in r.lowered)
    ):
        return Diagnosis(
            "recipient_unknown",
            f"The recipient {r.address or ''} does not exist ({r.said}).".replace("  ", " "),
            "Check the address for typos and try another one.",
        )
    return None


def _temporary(r: _Reply) -> Diagnosis | None:
    if 400 <= r.code < 500:
        return Diagnosis(
            "temporary_failure",
            f"The server refused {r.phase} for now ({r.said}): it is busy, rate-limiting or "
            "greylisting.",
            "Try again in a few minutes. If it repeats, check the provider's sending limits.",
        )
    return None


def _greeting_refused(r: _Reply) -> Diagnosis | None:
    if r.phase == "GREETING":
        return Diagnosis(
            "greeting_refused",
            f"The server refused the connection at once ({r.said}).",
            "It may block this machine's IP address (for example as a dynamic or listed "
            "address) or not serve mail on this port. Check the port, and ask the server's "
            "administrator to allow this machine.",
        )
    return None


def _message_rejected(r: _Reply) -> Diagnosis | None:
    if r.phase == "DATA" or (r.phase == "MAIL" and (r.code == 552 or r.status == "5.3.4")):
        return Diagnosis(
            "message_rejected",
            f"The server refused the message ({r.said}).",
            "Read the server's text: it names the policy (size, content or spam filter). For "
            "a test email, try again with another recipient; otherwise ask the provider.",
        )
    return None


_REPLY_RULES = (
    _basic_auth_disabled,
    _app_password_required,
    _wrong_password,
    _encryption_required,
    _auth_required,
    _sender_not_allowed,
    _relay_denied,
    _recipient_unknown,
    _temporary,
    _greeting_refused,
    _message_rejected,
)


def _diagnose_other(phase: str, code: int, said: str) -> Diagnosis:
    if phase == "AUTH":
        return Diagnosis(
            "auth_failed",
            f"The server refused the login ({said}).",
            "Check the SMTP Authentication Login and Password, and the authentication method "
            "under Advanced.",
        )
    return Diagnosis(
        "refused",
        f"The server refused {phase} ({said}).",
        "The server's text says why; if it is unclear, ask the server's administrator and "
        "quote it.",
    )


# --- Settings and situations without a server reply -----------------------------------------


def diagnose_custom_ca(*, message: str) -> Diagnosis:
    return Diagnosis("custom_ca_invalid", "The custom CA certificate cannot be read.", message)


def diagnose_helo_name(*, problem: str) -> Diagnosis:
    return Diagnosis(
        "helo_name_invalid",
        f"The HELO name is not usable: {problem}.",
        "Under Advanced enter a host name without spaces (like mail.example.com), or leave the "
        "HELO name empty.",
    )


def diagnose_no_esmtp(*, code: int, message: str) -> Diagnosis:
    return Diagnosis(
        "no_esmtp",
        f"The server does not speak ESMTP ({reply_text(code, message)}): no STARTTLS, AUTH or "
        "size limit.",
        "Such an old server cannot encrypt or log in; use your provider's submission server.",
    )


def diagnose_tls_off(*, has_login: bool, offers_starttls: bool) -> Diagnosis:
    """TLS mode None; `has_login` when a password would go out with the mail."""
    what = "mail and the password travel" if has_login else "mail travels"
    hint = (
        " The server offers STARTTLS: under Advanced set TLS mode to Automatic."
        if offers_starttls
        else ""
    )
    return Diagnosis(
        "tls_off",
        f"TLS is turned off: {what} unencrypted.",
        "Use TLS unless this relay is on your own network." + hint,
    )


def diagnose_password_in_clear(*, port: int, is_tls_off: bool, offers_starttls: bool) -> Diagnosis:
    """A login is set and the connection is not encrypted: the password was kept back."""
    why = (
        "TLS is turned off (Advanced → TLS mode None)"
        if is_tls_off
        else f"The server offers no encryption on port {port}"
    )
    if offers_starttls:
        fix = (
            "The server offers STARTTLS: set SMTP Secure Connection Required to Y, and under "
            "Advanced TLS mode to Automatic."
        )
    else:
        fix = (
            "Turn on SMTP Secure Connection Required (Y) with a port that encrypts: "
            f"{SUBMISSION_PORT} with STARTTLS or {IMPLICIT_TLS_PORT} with implicit TLS."
        )
    return Diagnosis(
        "password_in_clear",
        f"{why}: your password would travel in clear, readable by anyone on the network "
        "path, so Postroom did not send it.",
        f"{fix} Only if the relay is on a trusted network, tick “{ALLOW_PLAINTEXT_AUTH}” instead.",
    )


def diagnose_certificate_expiring(*, days_left: int) -> Diagnosis:
    return Diagnosis(
        "certificate_expires_soon",
        f"The server's certificate expires in {days_left} days.",
        "Ask the mail server's administrator to renew it before mail stops.",
    )


def diagnose_no_senders() -> Diagnosis:
    return Diagnosis(
        "no_senders",
        "There is no sender address to check.",
        "Set the company email address on the SMTP Server Information tab and the users' "
        "addresses in the User Master.",
    )


def diagnose_no_test_sender() -> Diagnosis:
    return Diagnosis(
        "no_sender",
        "There is no company email address to send the test from.",
        "Set the company email address on the SMTP Server Information tab.",
    )


def diagnose_smtputf8_missing(*, address: str) -> Diagnosis:
    return Diagnosis(
        "smtputf8_missing",
        f"{address} has non-ASCII characters and the server does not support SMTPUTF8.",
        "Use an address with only ASCII letters, or a server that supports SMTPUTF8 (RFC 6531).",
    )
