"""Turn what went wrong talking to an SMTP server into plain words and what to change.

Pure functions: they take what was observed (an OSError, a connection that dropped, a setting
that keeps Postroom from going on) and return a `Diagnosis`. No sockets here, so every mapping
is unit-tested. Settings are named as the Company page names them ("SMTP Communication Port",
"Advanced"). TLS and certificates: postroom.mail.tls_advice; a server's refusal:
postroom.mail.classify (the reply table) with postroom.mail.reply_advice (its words).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from postroom.mail.auth import AUTH_PREFERENCE
from postroom.mail.check_report import reply_text
from postroom.mail.config import IMPLICIT_TLS_PORT

SUBMISSION_PORT = 587  # RFC 6409 §3.1: message submission, STARTTLS
RELAY_PORT = 25  # RFC 5321 §4.5.4: server-to-server relay


@dataclass(frozen=True)
class Diagnosis:
    code: str  # stable: tests, the JSON output and the API key on it
    summary: str  # what is wrong, in plain words
    advice: str  # what to change

    @property
    def sentence(self) -> str:
        """What happened and what to do, as one text for a page or a log line."""
        return f"{self.summary} {self.advice}"


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
ENCRYPT_ADVICE = (
    "Set SMTP Secure Connection Required to Y (or, under Advanced, TLS mode to STARTTLS or "
    "Automatic) so Postroom encrypts the connection before logging in or sending."
)
# The Company page's name for SmtpServerConfig.allow_plaintext_auth.
ALLOW_PLAINTEXT_AUTH = "Allow my password over an unencrypted connection"


def _is_under(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def is_microsoft(host: str) -> bool:
    return _is_under(host, _MICROSOFT_DOMAINS)


def app_password_advice(host: str) -> str | None:
    """The provider's app-password instructions when `host` belongs to one that needs them."""
    for domains, advice in _APP_PASSWORD_ADVICE.items():
        if _is_under(host, domains):
            return advice
    return None


# --- Before SMTP: name, TCP -----------------------------------------------------------------


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


# --- SMTP conversation ----------------------------------------------------------------------


def diagnose_disconnected(*, phase: str) -> Diagnosis:
    return Diagnosis(
        "disconnected",
        f"The server closed the connection during {phase}.",
        "Servers hang up like this when they refuse this machine's address or TLS settings. "
        "Try again; if it repeats, check the TLS mode and port, and ask the server's "
        "administrator what their log says.",
    )


def diagnose_not_smtp(*, phase: str, port: int, said: str) -> Diagnosis:
    """What came back was no SMTP reply at all: another service answers on the port."""
    return Diagnosis(
        "not_smtp",
        f"The answer to {phase} on port {port} is not an SMTP reply: “{said}”.",
        "Check the SMTP Communication Port and the SMTP Server Address: the service there is "
        "not a mail server (or speaks TLS from the first byte: then set TLS mode to Implicit "
        "TLS under Advanced).",
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


def diagnose_starttls_refused_plaintext(*, said: str, has_login: bool) -> Diagnosis:
    """STARTTLS refused while encryption is optional (N): Postroom goes on in plain text."""
    secret = " and the password" if has_login else ""
    return Diagnosis(
        "starttls_refused_plaintext",
        f"The server offers STARTTLS but refused to start it ({said}): mail{secret} would "
        "travel unencrypted.",
        "The server's TLS setup is broken or it is overloaded: ask its administrator. Set SMTP "
        "Secure Connection Required to Y to stop rather than send unencrypted.",
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
    methods = ", ".join(AUTH_PREFERENCE[:-1]) + f" or {AUTH_PREFERENCE[-1]}"
    if wanted != "auto":
        return Diagnosis(
            "auth_method_not_offered",
            f"Authentication method {wanted} is chosen, but the server offers {offered_text}.",
            "Under Advanced set the authentication method to Automatic or to one the server "
            "offers.",
        )
    return Diagnosis(
        "auth_method_unsupported",
        f"The server offers only {offered_text}; Postroom logs in with {methods}.",
        "If the server offers only XOAUTH2 (OAuth, as Microsoft 365 and Gmail can), password "
        "login is switched off for this account: set the authentication method to OAuth 2.0 "
        "(XOAUTH2) and sign in, or enable password login at the provider.",
    )


# --- Settings and situations without a server reply -----------------------------------------


def diagnose_oauth_token(problem: str) -> Diagnosis:
    """No OAuth access token: the route waits until someone signs in again or fixes it."""
    return Diagnosis(
        "oauth_token",
        f"Postroom could not get an OAuth access token to log in with. {problem}",
        "Open the OAuth sign-in (Company → SMTP Server Information → OAuth, or your profile "
        "for your own mailbox), correct it and sign in again: mail waits until then.",
    )


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
