"""TLS for the SMTP client: the verifying context, what a certificate says, and port probes.

Verification is always on for sending: the system store plus the company's custom CA, host
name checked. The non-verifying context exists only to *show* a certificate that failed
verification (so the diagnosis can say "issued for X, not Y") and never carries a password.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from dataclasses import dataclass

from aiosmtplib import SMTP, SMTPException
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from postroom.core.errors import ConfigurationError

# An SMTP greeting is one line (RFC 5321 §4.2: reply lines are at most 512 octets).
_GREETING_LINE_LIMIT = 512


class CustomCaError(ConfigurationError):
    code = "custom_ca_invalid"


def client_tls_context(*, ca_pem: str = "", verify: bool = True) -> ssl.SSLContext:
    """Return a client context trusting the system store plus `ca_pem`, host names checked.

    `verify=False` is for looking at a rejected certificate only; never send with it.
    """
    # create_default_context: TLS 1.2 minimum, CERT_REQUIRED, check_hostname, system store.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_pem.strip():
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError):
            raise CustomCaError(
                "The custom CA certificate under Advanced is not a readable PEM certificate. "
                "Paste the whole text from -----BEGIN CERTIFICATE----- to "
                "-----END CERTIFICATE-----, or clear the field.",
                field="smtp_ca_certificate",
            ) from None
    if not verify:
        context.check_hostname = False  # must come before CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    common_name: str
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses
    issuer: str
    issuer_common_name: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str

    @property
    def is_self_signed(self) -> bool:
        return self.subject == self.issuer

    def is_expired(self, *, at: dt.datetime | None = None) -> bool:
        return self.not_after < (at or dt.datetime.now(dt.UTC))

    def days_left(self, *, at: dt.datetime | None = None) -> int:
        return (self.not_after - (at or dt.datetime.now(dt.UTC))).days

    @property
    def names_text(self) -> str:
        return ", ".join(self.names or (self.common_name,)) or "(no name)"

    def describe(self) -> list[str]:
        """Lines for a transcript."""
        return [
            f"Subject: {self.subject}",
            f"Names: {self.names_text}",
            f"Issuer: {self.issuer}",
            f"Valid from {self.not_before:%Y-%m-%d} until {self.not_after:%Y-%m-%d %H:%M} UTC",
            f"SHA-256 fingerprint: {self.fingerprint_sha256}",
        ]


def _common_name(name: x509.Name) -> str:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else ""


def certificate_info(der: bytes) -> CertificateInfo:
    """Read what a DER certificate says about itself."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
            str(address) for address in san.get_values_for_type(x509.IPAddress)
        )
    except x509.ExtensionNotFound:
        names = ()
    fingerprint = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=_common_name(cert.subject),
        names=names,
        issuer=cert.issuer.rfc4514_string(),
        issuer_common_name=_common_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)),
    )


@dataclass(frozen=True)
class TlsSessionInfo:
    protocol: str  # "TLSv1.3"
    cipher: str
    certificate: CertificateInfo | None


def tls_session_info(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> TlsSessionInfo:
    """Describe an established TLS session: protocol, cipher and the server's certificate."""
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    return TlsSessionInfo(
        protocol=ssl_object.version() or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        certificate=certificate_info(der) if der else None,
    )


async def fetch_certificate_unverified(
    *, host: str, port: int, is_implicit: bool, timeout: float, helo_name: str = ""
) -> CertificateInfo | None:
    """Connect again without verification just to read the certificate the server shows.

    Used after verification failed, to explain why. Sends no AUTH and no envelope; returns
    None when the server cannot be reached this way either.
    """
    client = SMTP(
        hostname=host,
        port=port,
        use_tls=is_implicit,
        start_tls=False,
        tls_context=client_tls_context(verify=False),
        timeout=timeout,
        local_hostname=helo_name or None,
    )
    try:
        await client.connect()
        if not is_implicit:
            await client.ehlo()
            await client.starttls()
        ssl_object = client.get_transport_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    except (SMTPException, OSError, TimeoutError, ValueError):
        return None
    finally:
        client.close()
    return certificate_info(der) if der else None


async def probe_implicit_tls(*, host: str, port: int, timeout: float) -> bool:
    """Tell whether the port answers a TLS handshake from the first byte (like 465)."""
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=client_tls_context(verify=False),
                server_hostname=host,
                ssl_handshake_timeout=timeout,
            ),
            timeout,
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def probe_plain_greeting(*, host: str, port: int, timeout: float) -> str | None:
    """Return the plain-text greeting line the port sends (like 587 or 25), if any."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        writer.close()
    text = line[:_GREETING_LINE_LIMIT].decode("ascii", "replace").strip()
    return text if text[:3].isdigit() else None
