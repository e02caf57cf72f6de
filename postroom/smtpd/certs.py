"""The listener's TLS certificate: the one configured (POSTROOM_SMTPD_CERT and _KEY), or for
local use a self-signed one made at first start in the data directory.

A client configured against a self-signed certificate must be told to trust it; the SMTP
credentials page shows its SHA-256 fingerprint so a person can compare it with what their
client shows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from postroom.core.errors import ConfigurationError

SELF_SIGNED_YEARS = 5
SELF_SIGNED_CERT = "smtpd-cert.pem"
SELF_SIGNED_KEY = "smtpd-key.pem"


@dataclass(frozen=True)
class ListenerCertificate:
    cert_path: Path
    key_path: Path
    is_self_signed: bool

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, as AB:CD:…, as mail programs and openssl show it."""
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        return cert.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def expires_at(self) -> dt.datetime:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        return cert.not_valid_after_utc

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_path, self.key_path)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"The SMTP listener cannot use its certificate {self.cert_path} with key "
                f"{self.key_path}: {error}. Check POSTROOM_SMTPD_CERT and POSTROOM_SMTPD_KEY."
            ) from None
        return context


def listener_certificate(*, create: bool = False) -> ListenerCertificate | None:
    """The configured certificate, else the self-signed one (made now with `create`)."""
    if settings.POSTROOM_SMTPD_CERT:
        return ListenerCertificate(
            Path(settings.POSTROOM_SMTPD_CERT), Path(settings.POSTROOM_SMTPD_KEY), False
        )
    cert_path = settings.DATA_DIR / SELF_SIGNED_CERT
    key_path = settings.DATA_DIR / SELF_SIGNED_KEY
    if not cert_path.exists() or not key_path.exists():
        if not create:
            return None
        _self_signed_make(cert_path, key_path, host=settings.POSTROOM_SMTPD_HOST)
    return ListenerCertificate(cert_path, key_path, True)


def _self_signed_make(cert_path: Path, key_path: Path, *, host: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Postroom SMTP listener")])
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for candidate in {host, "127.0.0.1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(candidate)))
        except ValueError:
            names.append(x509.DNSName(candidate))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * SELF_SIGNED_YEARS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first, readable by the owner only, so it is never on disk for others.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
