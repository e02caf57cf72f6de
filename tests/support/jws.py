"""RS256 JSON Web Tokens (RFC 7519 signed as RFC 7515 compact JWS, RFC 7518 §3.3), with
`cryptography` alone.

The fake provider (tests/support/oauth_server.py) verifies RFC 7523 jwt-bearer assertions
with `verify_rs256`, and tests sign their own with `sign_rs256`. Postroom signs with authlib:
checking its assertions with code that shares nothing with it makes an agreement evidence,
not one library agreeing with itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class InvalidJwtError(ValueError):
    """The text is not a JWT, or not one signed with RS256 by the expected key."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    # RFC 7515 §2 drops the padding; b64decode wants it back.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (binascii.Error, ValueError) as error:
        raise InvalidJwtError("a JWT segment is not base64url JSON") from error
    if not isinstance(value, dict):
        raise InvalidJwtError("a JWT segment is not a JSON object")
    return value


def _parts(token: str) -> list[str]:
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise InvalidJwtError("a JWT is three dot-separated base64url parts")
    return parts


def public_key_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The PEM of the public half, as a provider registers it for a service account."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def sign_rs256(
    claims: Mapping[str, Any], private_key: rsa.RSAPrivateKey, *, key_id: str | None = None
) -> str:
    """Sign `claims` as a compact JWS with RS256 (RSASSA-PKCS1-v1_5 with SHA-256)."""
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if key_id is not None:
        header["kid"] = key_id
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims, read without checking the signature: only to find whose key checks it."""
    return _json_object(_parts(token)[1])


def verify_rs256(token: str, public_key: str) -> dict[str, Any]:
    """The claims of `token` once its RS256 signature checks out against the PEM `public_key`.

    The header must say RS256: trusting any other `alg` it names ("none", or HS256 keyed with
    the public key) is the classic JWT forgery (RFC 8725 §2.1).
    """
    parts = _parts(token)
    if _json_object(parts[0]).get("alg") != "RS256":
        raise InvalidJwtError("the JWT is not signed with RS256")
    key = serialization.load_pem_public_key(public_key.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidJwtError("the registered key is not an RSA public key")
    try:
        signature = _b64url_decode(parts[2])
        key.verify(
            signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (binascii.Error, InvalidSignature) as error:
        raise InvalidJwtError("the JWT signature does not match the registered key") from error
    return _json_object(parts[1])
