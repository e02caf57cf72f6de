"""dkimpy's signer with its RSA step done by OpenSSL (through `cryptography`).

dkimpy computes RSA signatures in pure Python (`pow` on 1024-bit halves): about 8 ms per
RSA-2048 signature on the benchmark machine, which would cap a signed campaign near 130
messages a second (bench/dkim.py). OpenSSL makes the same PKCS#1 v1.5 signature in about
0.3 ms. Everything else (header selection, canonicalization, body hash, the tag list and its
folding) stays dkimpy's: `gen_header` below is dkimpy 1.1.8's (pinned in pyproject.toml)
with one line changed, and the tests verify every signature with dkimpy's own verifier.
"""

from __future__ import annotations

import base64
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils


class OpenSslRsaDkim(dkim.DKIM):  # type: ignore[misc]  # dkimpy has no type hints
    """Sign RSA with `rsa_key` (an OpenSSL key loaded once per signer snapshot) instead of
    the PEM dkimpy parses; set it before each `sign` with an RSA key."""

    rsa_key: rsa.RSAPrivateKey | None = None

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: tuple[bytes, ...],
        canon_policy: Any,
        header_name: bytes,
        pk: Any,
        standardize: bool = False,
    ) -> bytes:
        if self.signature_algorithm != b"rsa-sha256" or standardize or self.rsa_key is None:
            return super().gen_header(  # type: ignore[no-any-return]
                fields, include_headers, canon_policy, header_name, pk, standardize
            )
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = dkim.fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        h = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            h, canon_policy, headers, include_headers, header, dict(fields)
        )
        # The one change: RFC 8017 RSASSA-PKCS1-v1_5 over the SHA-256 digest, by OpenSSL.
        signature = self.rsa_key.sign(
            h.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
        index = next(i for i, (tag, _) in enumerate(fields) if tag == b"b")
        fields[index] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)  # type: ignore[no-any-return]
