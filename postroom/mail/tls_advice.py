"""Turn what went wrong with TLS into plain words and what to change: the mode against the
port, the handshake, the server's certificate, the custom CA.

Pure functions over what was observed (an ssl error, what a certificate says, what a probe of
the port heard); the connection check (postroom.mail.diagnostics) does the probing.
"""

from __future__ import annotations

import datetime as dt
import ssl

from postroom.mail.advice import SUBMISSION_PORT, Diagnosis
from postroom.mail.check_report import server_text_excerpt
from postroom.mail.config import IMPLICIT_TLS_PORT
from postroom.mail.tls import CertificateInfo

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
_TLS_PORTS_ADVICE = (
    f"Port {IMPLICIT_TLS_PORT} expects TLS from the first byte (implicit TLS); port "
    f"{SUBMISSION_PORT} starts in plain text and upgrades with STARTTLS."
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


def diagnose_custom_ca(*, message: str) -> Diagnosis:
    return Diagnosis("custom_ca_invalid", "The custom CA certificate cannot be read.", message)


def diagnose_certificate_expiring(*, days_left: int) -> Diagnosis:
    return Diagnosis(
        "certificate_expires_soon",
        f"The server's certificate expires in {days_left} days.",
        "Ask the mail server's administrator to renew it before mail stops.",
    )
