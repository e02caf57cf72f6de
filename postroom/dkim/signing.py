"""Sign outgoing messages with DKIM (RFC 6376, RFC 8463) at the last moment before sending.

The worker loads a `DkimSigner` snapshot of the signing keys when it rereads its settings
and calls `sign` on the exact bytes it is about to send. The snapshot is immutable and holds
the decrypted keys, so a message costs the signing itself and no database or decryption.
dkimpy (the maintained implementation) builds the signatures; relaxed/relaxed survives the
header refolding and whitespace changes relays commonly make (RFC 6376 §3.4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses
from types import MappingProxyType

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postroom.core.errors import SecretKeyError
from postroom.core.secrets import secret_decrypt
from postroom.dkim.models import Algorithm, DkimKey
from postroom.dkim.openssl import OpenSslRsaDkim
from postroom.dkim.selectors import dkim_signing_keys

logger = logging.getLogger(__name__)

# RFC 6376 §5.4.1's recommended fields, plus those of RFC 8058 one-click unsubscribe.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"in-reply-to",
    b"references",
)
# Named once more than they occur, so that adding one after signing breaks the signature
# (RFC 6376 §8.15): a second From is how a forged author would be slipped in.
OVERSIGNED_HEADERS: frozenset[bytes] = frozenset({b"from"})
CANONICALIZATION = (b"relaxed", b"relaxed")


@dataclass(frozen=True)
class SigningKey:
    domain: bytes
    selector: bytes
    algorithm: bytes
    private_key: bytes = field(repr=False)  # PEM (RSA) or base64 seed (Ed25519)
    # RSA: the same key loaded into OpenSSL once, for postroom.dkim.openssl.
    rsa_key: rsa.RSAPrivateKey | None = field(default=None, repr=False, compare=False)


def _from_domain(headers: list[tuple[bytes, bytes]]) -> str:
    """The domain of the (first) author in the From field, lower case, A-label form."""
    for name, value in headers:
        if name.lower() == b"from":
            text = value.decode("utf-8", "replace")
            address = next((addr for _, addr in getaddresses([text]) if "@" in addr), "")
            domain = address.rpartition("@")[2].strip().rstrip(".").lower()
            if domain and not domain.isascii():
                try:
                    domain = domain.encode("idna").decode("ascii")
                except UnicodeError:
                    return ""
            return domain
    return ""


def _headers_to_sign(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    present = [name.lower() for name, _ in headers if name.lower() in SIGNED_HEADERS]
    return present + [name for name in present if name in OVERSIGNED_HEADERS]


@dataclass(frozen=True)
class DkimSigner:
    """The signing keys of one moment, by domain. Empty: messages pass unchanged."""

    keys: Mapping[str, tuple[SigningKey, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(self.keys)

    def sign(self, data: bytes) -> bytes:
        """Return `data` with a DKIM-Signature per signing key of its From domain put in front
        (an RSA and an Ed25519 one when the domain has both), or `data` unchanged when that
        domain has no signing key."""
        if not self.keys:
            return data
        linesep = b"\r\n" if b"\r\n" in data[: data.find(b"\n") + 1 or len(data)] else b"\n"
        message = OpenSslRsaDkim(data, linesep=linesep)
        domain = _from_domain(message.headers)
        keys = self.keys.get(domain)
        if not keys:
            return data
        include = _headers_to_sign(message.headers)
        signatures: list[bytes] = []
        for key in keys:
            message.rsa_key = key.rsa_key
            try:
                signatures.append(
                    message.sign(
                        key.selector,
                        key.domain,
                        key.private_key,
                        signature_algorithm=key.algorithm,
                        canonicalize=CANONICALIZATION,
                        include_headers=include,
                    )
                )
            except dkim.DKIMException as error:
                # A message dkimpy cannot parse still goes out, unsigned, rather than never.
                logger.warning(
                    "DKIM signing for %s (%s) failed: %s", domain, key.selector.decode(), error
                )
        return b"".join(signatures) + data


def signing_key_make(*, domain: str, selector: str, algorithm: str, private_key: str) -> SigningKey:
    """A key ready to sign: an RSA key is also loaded into OpenSSL here, once."""
    private = private_key.encode("ascii")
    rsa_key = None
    if algorithm == Algorithm.RSA_SHA256:
        loaded = serialization.load_pem_private_key(private, password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)  # keys.key_pair_generate made it
        rsa_key = loaded
    return SigningKey(
        domain=domain.encode("ascii"),
        selector=selector.encode("ascii"),
        algorithm=algorithm.encode("ascii"),
        private_key=private,
        rsa_key=rsa_key,
    )


def _signing_key(key: DkimKey) -> SigningKey:
    return signing_key_make(
        domain=key.domain,
        selector=key.selector,
        algorithm=key.algorithm,
        private_key=secret_decrypt(key.private_key_encrypted),
    )


def dkim_signer_load() -> DkimSigner:
    """The keys that sign now, decrypted once for all the messages until the next load."""
    by_domain: dict[str, list[SigningKey]] = {}
    for key in dkim_signing_keys():
        try:
            signing_key = _signing_key(key)
        except SecretKeyError as error:
            # Mail keeps flowing (unsigned for this domain) and the log says why.
            logger.error(  # noqa: TRY400 - the message says why; a traceback adds nothing
                "DKIM key %s is not used: %s", key.record_name, error.message
            )
            continue
        by_domain.setdefault(key.domain, []).append(signing_key)
    return DkimSigner(MappingProxyType({d: tuple(k) for d, k in by_domain.items()}))
