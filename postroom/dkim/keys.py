"""Make DKIM key pairs and read a published DKIM record: pure functions, no database.

What each function returns is in the form dkimpy takes and RFC 6376 / RFC 8463 publish:
RSA private keys as PKCS#1 PEM with the public key as base64 DER SubjectPublicKeyInfo;
Ed25519 private keys as the base64 32-byte seed with the public key as base64 raw 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from postroom.dkim.models import Algorithm, CheckResult

# RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits and SHOULD use 2048.
RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537

# RFC 6376 §3.1: a selector is a sub-domain: dot-separated labels of letters, digits, hyphens.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
SELECTOR_PATTERN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str


def key_pair_generate(algorithm: Algorithm) -> KeyPair:
    if algorithm is Algorithm.ED25519_SHA256:
        ed_key = ed25519.Ed25519PrivateKey.generate()
        seed = ed_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = ed_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return KeyPair(base64.b64encode(seed).decode(), base64.b64encode(public).decode())
    rsa_key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1: what dkimpy parses
        serialization.NoEncryption(),
    )
    der = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(pem.decode(), base64.b64encode(der).decode())


def record_tags(text: str) -> dict[str, str]:
    """The tags of one DKIM key record (RFC 6376 §3.2 tag=value list), whitespace removed
    from values (folding white space may appear inside p=)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), re.sub(r"\s+", "", value))
    return tags


def _is_dkim_record(text: str) -> bool:
    tags = record_tags(text)
    # RFC 6376 §3.6.1: v= is optional but, when present, must come first and be DKIM1.
    return "p" in tags and (text.lstrip().lower().startswith("v=dkim1") or "v" not in tags)


def _decoded(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def record_compare(
    records: tuple[str, ...], *, algorithm: Algorithm, public_key: str
) -> CheckResult:
    """How the TXT records found at a key's name compare with the key."""
    if not records:
        return CheckResult.MISSING
    keys = [text for text in records if _is_dkim_record(text)]
    if not keys:
        return CheckResult.NOT_DKIM
    if len(keys) > 1:
        # RFC 6376 §3.6.2.2: with several records, verifiers may use any one of them.
        return CheckResult.SEVERAL
    tags = record_tags(keys[0])
    if tags.get("k", "rsa").lower() != algorithm.key_type:
        return CheckResult.WRONG_TYPE
    if not tags["p"]:
        return CheckResult.REVOKED  # RFC 6376 §3.6.1: an empty p= means the key is revoked
    found = _decoded(tags["p"])
    if found is None or found != _decoded(public_key):
        return CheckResult.MISMATCH
    return CheckResult.OK
