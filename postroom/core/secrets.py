"""Encrypt the secrets Postroom stores (SMTP and ePOD passwords) with a key not in the database.

The Fernet keys are derived from Django's SECRET_KEY (POSTROOM_SECRET_KEY or the key file)
and its fallbacks, so rotating the master secret is Django's usual SECRET_KEY_FALLBACKS
dance: new writes use the new key, old values still decrypt until re-saved.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from postroom.core.errors import SecretKeyError

_HKDF_INFO = b"postroom stored-secrets v1"


def secret_keys_derive(info: bytes) -> list[bytes]:
    """32-byte keys for one purpose (`info`), derived from the master secret and then its
    fallbacks: new values use the first, old ones still verify or decrypt with the others."""
    masters = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master.encode())
        for master in masters
    ]


def _multi_fernet() -> MultiFernet:
    keys = secret_keys_derive(_HKDF_INFO)
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])


def secret_encrypt(plaintext: str) -> str:
    return _multi_fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _multi_fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "Stored secrets cannot be decrypted with this secret key. Start Postroom with "
            "the POSTROOM_SECRET_KEY (or var/secret.key file) that encrypted them; if the old "
            "key is lost, clear the stored passwords with `postroom forget-secrets` and "
            "enter them again."
        ) from None
