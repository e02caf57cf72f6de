"""Check and normalise what an administrator types into SMTP Server Information.

Pure functions, no database: each takes the raw text of one field and returns the value to
store, or raises `postroom.core.errors.ValidationError` with the field's name and a message
that says what to type instead. The form shows the message next to the field; the service
runs the same checks so that every caller (page, API, command) stores only clean values.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import unicodedata

import idna  # a dependency of email-validator; IDNA 2008 with UTS #46 mapping
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from email_validator import EmailNotValidError, validate_email

from postroom.company.models import AuthMethod, TlsMode
from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.advice import ALLOW_PLAINTEXT_AUTH
from postroom.mail.config import IMPLICIT_TLS_PORT, TlsPolicy, resolve_tls_policy
from postroom.mail.header_text import check_header_phrase

# RFC 1035 §2.3.4: a label is at most 63 octets, a name at most 255 octets on the wire,
# which leaves 253 characters for the dotted text form.
MAX_LABEL_LENGTH = 63
MAX_HOSTNAME_LENGTH = 253
_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# RFC 6335 §6: a port number is 16 bits; port 0 is reserved and cannot be connected to.
MIN_PORT, MAX_PORT = 1, 65535

# RFC 5321 §4.5.3.2 gives the defaults (connect 30 s is our choice: a TCP connect that has not
# finished after 30 s will not finish later; greeting/commands 5 min; end of data 10 min).
# The maxima are Postroom's: beyond them a worker holds a connection and a delivery slot for
# a server that is not going to answer. Connect: the RFC's 5 min for the greeting is a ceiling.
TIMEOUT_DEFAULTS = {"connect": 30, "command": 300, "data": 600}
TIMEOUT_MAXIMA = {"connect": 300, "command": 3600, "data": 3600}

# Larger than the whole Mozilla CA bundle (about 220 KB): anything bigger was pasted by mistake.
MAX_CA_PEM_LENGTH = 256 * 1024

# Ends "-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----" and the like.
PRIVATE_KEY_MARK = "PRIVATE KEY-----"

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_URL_LIKE_SCHEMES = ("smtp:", "smtps:", "mailto:", "http:", "https:")


def _control_characters(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)


def hostname_normalize(value: str, *, field: str, what: str = "server address") -> str:
    """Return a DNS host name as lowercase ASCII (IDN labels become xn-- A-labels)."""
    name = value.rstrip(".")  # a fully qualified name may end with the root's dot
    if len(name) > MAX_HOSTNAME_LENGTH:
        raise ValidationError(
            f"The {what} is longer than {MAX_HOSTNAME_LENGTH} characters, the limit for a "
            "host name (RFC 1035).",
            field=field,
        )
    if "" in name.split("."):
        raise ValidationError(
            f"“{value}” is not a valid host name: it has an empty part (two dots in a row, "
            "or a dot at the start).",
            field=field,
        )
    for label in name.split("."):
        if label.isascii() and len(label) > MAX_LABEL_LENGTH:
            raise ValidationError(
                f"The part “{label}” is longer than {MAX_LABEL_LENGTH} characters, the limit "
                "for one part of a host name (RFC 1035).",
                field=field,
            )
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValidationError(
            f"“{value}” is not a valid host name ({error}). Use letters, digits, hyphens and "
            "dots, for example smtp.example.com.",
            field=field,
        ) from None
    labels = ascii_name.split(".")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise ValidationError(
                f"The part “{label}” is longer than {MAX_LABEL_LENGTH} characters, the limit "
                "for one part of a host name (RFC 1035).",
                field=field,
            )
        if not _LDH_LABEL.match(label):
            raise ValidationError(
                f"“{value}” is not a valid host name: each part between dots may hold only "
                "letters, digits and hyphens, and cannot start or end with a hyphen.",
                field=field,
            )
    if labels[-1].isdigit():
        # RFC 3696 §2: a top-level domain is never all digits, so this is a mistyped IPv4.
        raise ValidationError(f"“{value}” is not a valid IPv4 address.", field=field)
    return ascii_name


def smtp_host_clean(value: str) -> str:
    """Validate the SMTP Server Address: a host name (IDN allowed) or an IP address."""
    field = "smtp_host"
    host = value.strip()
    if not host:
        raise ValidationError(
            "Enter the SMTP server address, for example smtp.gmail.com.", field=field
        )
    if _SCHEME.match(host) or host.lower().startswith(_URL_LIKE_SCHEMES):
        raise ValidationError(
            "Enter only the server's name, without “smtp://” or any other prefix: for "
            "example smtp.gmail.com.",
            field=field,
        )
    if any(char.isspace() for char in host):
        raise ValidationError("The server address cannot contain spaces.", field=field)
    if _control_characters(host):
        raise ValidationError("The server address cannot contain control characters.", field=field)
    if "@" in host:
        raise ValidationError(
            "That looks like an email address. Enter the server's name, for example "
            "smtp.gmail.com; the login goes in SMTP Authentication Login.",
            field=field,
        )
    if any(char in host for char in "/?#\\"):
        raise ValidationError(
            "Enter only the server's name, without a path: for example smtp.gmail.com.",
            field=field,
        )
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    if ":" in host:
        raise ValidationError(
            "Enter the port in SMTP Communication Port, not after the address: for example "
            "smtp.gmail.com here and 587 there.",
            field=field,
        )
    return hostname_normalize(host, field=field)


def smtp_port_clean(value: int | None) -> int:
    field = "smtp_port"
    if value is None:
        raise ValidationError(
            "Enter the SMTP communication port, for example 587 (STARTTLS) or 465 (TLS).",
            field=field,
        )
    if not MIN_PORT <= value <= MAX_PORT:
        raise ValidationError(
            f"The port must be a whole number from {MIN_PORT} to {MAX_PORT}; mail servers "
            "usually listen on 587 or 465.",
            field=field,
        )
    return value


def login_clean(value: str, *, field: str) -> str:
    """A login goes into an AUTH command as is: no line breaks, NUL or other controls."""
    login = value.strip()
    if _control_characters(login):
        raise ValidationError(
            "The login cannot contain control characters such as line breaks, tabs or NUL.",
            field=field,
        )
    return login


def smtp_password_check(value: str) -> None:
    """Reject a new SMTP password AUTH cannot carry. The message never repeats the value."""
    # RFC 4616 §2: AUTH PLAIN separates login and password with NUL, so neither may hold one.
    if "\x00" in value:
        raise ValidationError(
            "The password cannot contain a NUL character (SMTP AUTH PLAIN cannot send it).",
            field="smtp_password",
        )


def sender_email_clean(value: str) -> str:
    """Validate the company email address and return its normalized form ("" if empty)."""
    address = value.strip()
    if not address:
        return ""
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationError(
            f"This is not a valid email address: {error}", field="sender_email"
        ) from None
    # And the rules of every address that goes into a header (an encoded word in the local
    # part would be rewritten by the email package).
    normalize_address(address, label="Company email address", field="sender_email")
    return normalized


def sender_name_clean(value: str) -> str:
    name = value.strip()
    # It goes into the From line of the company's mail.
    check_header_phrase(name, label="Sender name", what="the sender name", field="sender_name")
    return name


def helo_name_clean(value: str) -> str:
    """Return the EHLO name: a host name, or an IP as an RFC 5321 §4.1.3 address literal."""
    field = "smtp_helo_name"
    name = value.strip()
    if not name:
        return ""
    literal = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    literal = literal.removeprefix("IPv6:")
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        pass
    else:
        return f"[{address}]" if address.version == 4 else f"[IPv6:{address}]"
    if any(char.isspace() for char in name) or _control_characters(name):
        raise ValidationError("The HELO name cannot contain spaces.", field=field)
    return hostname_normalize(name, field=field, what="HELO name")


def timeout_clean(value: int | None, *, which: str) -> int:
    field = f"smtp_timeout_{which}"
    if value is None:
        return TIMEOUT_DEFAULTS[which]
    maximum = TIMEOUT_MAXIMA[which]
    if not 1 <= value <= maximum:
        raise ValidationError(
            f"Enter a number of seconds from 1 to {maximum}; RFC 5321 recommends "
            f"{TIMEOUT_DEFAULTS[which]}.",
            field=field,
        )
    return value


# More sessions than this to one relay is a denial of service, not throughput: providers
# allow a handful (Microsoft 365: 3 per mailbox) and Postfix's default per-client limit is 50.
MAX_CONNECTIONS = 50
DEFAULT_CONNECTIONS = 4
# Rates are limits we impose on ourselves; the bounds only catch typing mistakes.
RATE_MAXIMA = {"second": 10_000, "minute": 600_000, "day": 100_000_000}


def max_connections_clean(value: int | None) -> int:
    if value is None:
        return DEFAULT_CONNECTIONS
    if not 1 <= value <= MAX_CONNECTIONS:
        raise ValidationError(
            f"Enter a number of connections from 1 to {MAX_CONNECTIONS}; ask your provider "
            "how many it allows (Microsoft 365: 3).",
            field="smtp_max_connections",
        )
    return value


def send_as_policy_clean(value: str) -> str:
    from postroom.company.models import SendAsPolicy

    if value not in SendAsPolicy.values:
        raise ValidationError(
            "Choose how mail from users is sent: automatic, as the user or via the company.",
            field="send_as_policy",
        )
    return value


def rate_clean(value: int | None, *, per: str) -> int:
    if value is None:
        return 0
    maximum = RATE_MAXIMA[per]
    if not 0 <= value <= maximum:
        raise ValidationError(
            f"Enter a number of messages per {per} from 0 (no limit) to {maximum:,}.",
            field=f"smtp_rate_per_{per}",
        )
    return value


def ca_certificates_load(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def ca_certificate_clean(value: str) -> str:
    """Check that a custom CA is one or more PEM certificates, valid today, and no key."""
    field = "smtp_ca_certificate"
    pem = value.strip()
    if not pem:
        return ""
    if len(pem) > MAX_CA_PEM_LENGTH:
        raise ValidationError(
            "This is far larger than a CA certificate; paste only the CA that signed your "
            "relay's certificate.",
            field=field,
        )
    if PRIVATE_KEY_MARK in pem:
        raise ValidationError(
            "This contains a private key. Paste only the CA certificate (the block between "
            "-----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----) and keep the key secret.",
            field=field,
        )
    try:
        certificates = ca_certificates_load(pem)
    except ValueError:
        raise ValidationError(
            "This is not a PEM certificate. Paste the CA certificate as text, from "
            "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
            field=field,
        ) from None
    now = dt.datetime.now(dt.UTC)
    for certificate in certificates:
        if certificate.not_valid_after_utc < now:
            raise ValidationError(
                f"The certificate “{_subject(certificate)}” expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}; TLS verification would fail. "
                "Paste the CA's current certificate.",
                field=field,
            )
    return pem + "\n"


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(no subject)"


def ca_certificate_describe(pem: str) -> str:
    """One line per certificate for the page and the audit log: subject and fingerprint."""
    if not pem.strip():
        return ""
    try:
        certificates = ca_certificates_load(pem)
    except ValueError:
        return "unreadable certificate"
    return "; ".join(
        f"{_subject(c)} (SHA-256 {c.fingerprint(hashes.SHA256()).hex()[:16]}…, "
        f"valid until {c.not_valid_after_utc:%Y-%m-%d})"
        for c in certificates
    )


def tls_mode_check(*, tls_mode: str, secure_required: bool) -> None:
    if tls_mode not in TlsMode.values:
        raise ValidationError("Choose a TLS mode from the list.", field="smtp_tls_mode")
    if secure_required and tls_mode == TlsMode.NONE:
        raise ValidationError(
            "SMTP Secure Connection Required is Y, so the TLS mode cannot be “None”. Choose "
            "Automatic, STARTTLS or implicit TLS, or set Secure Connection Required to N.",
            field="smtp_tls_mode",
        )


def auth_method_check(value: str) -> None:
    if value not in AuthMethod.values:
        raise ValidationError(
            "Choose an authentication method from the list.", field="smtp_auth_method"
        )


def _plain_text_warning(
    policy: TlsPolicy, *, has_password: bool, allow_plaintext_auth: bool
) -> str:
    """What travels unencrypted under TLS mode None, or under N without STARTTLS."""
    if policy is TlsPolicy.NONE:
        when = "TLS mode is None: mail travels unencrypted over the network"
        fix = "Choose TLS mode Automatic unless the server is on a trusted network."
    else:
        when = (
            "Secure Connection Required is N: when the server does not offer STARTTLS, mail "
            "travels unencrypted"
        )
        fix = "Set it to Y unless the server is on a trusted network."
    if not has_password:
        return f"{when}. {fix}"
    if allow_plaintext_auth:
        return (
            f"{when}, and so does the SMTP password (“{ALLOW_PLAINTEXT_AUTH}” is ticked). "
            "Keep this only for a relay on a trusted network."
        )
    return (
        f"{when}. The SMTP password is never sent that way: without encryption Postroom "
        f"does not log in, and mail waits. Tick “{ALLOW_PLAINTEXT_AUTH}” only if the relay "
        "is on a trusted network."
    )


def smtp_settings_warnings(
    *,
    port: int | None,
    secure_required: bool,
    tls_mode: str,
    has_password: bool,
    sender_email: str,
    allow_plaintext_auth: bool = False,
) -> list[str]:
    """Settings that are allowed but probably not what the administrator wants."""
    warnings: list[str] = []
    if port is None:
        return warnings
    policy = resolve_tls_policy(port=port, secure_required=secure_required, tls_mode=tls_mode)
    if policy in (TlsPolicy.NONE, TlsPolicy.STARTTLS_OPPORTUNISTIC):
        warnings.append(
            _plain_text_warning(
                policy, has_password=has_password, allow_plaintext_auth=allow_plaintext_auth
            )
        )
    if policy is TlsPolicy.STARTTLS_REQUIRED and port == IMPLICIT_TLS_PORT:
        warnings.append(
            "Port 465 normally expects implicit TLS from the first byte, not STARTTLS; "
            "choose TLS mode Automatic or Implicit TLS, or use port 587."
        )
    if policy is TlsPolicy.IMPLICIT and port in (25, 587):
        # RFC 6409 §3.1 (587) and RFC 5321 (25) start in plain text and upgrade with STARTTLS.
        warnings.append(
            f"Port {port} normally starts in plain text and upgrades with STARTTLS; "
            "choose TLS mode Automatic or STARTTLS, or use port 465."
        )
    if not sender_email:
        warnings.append(
            "No company email address yet: mail sent as the company, and the connection "
            "check's MAIL FROM, need one."
        )
    return warnings
