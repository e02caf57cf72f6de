"""Key pairs and the reading of published DKIM records: pure, no DNS, no database."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key

from postroom.dkim.keys import key_pair_generate, record_compare, record_tags
from postroom.dkim.models import Algorithm, CheckResult

RSA = Algorithm.RSA_SHA256


def test_an_rsa_key_is_2048_bits_and_its_public_half_matches() -> None:
    pair = key_pair_generate(RSA)
    private = load_pem_private_key(pair.private.encode(), password=None)
    public = load_der_public_key(base64.b64decode(pair.public))
    assert pair.private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert private.key_size == 2048  # type: ignore[union-attr]
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]


def test_an_ed25519_key_publishes_its_raw_32_bytes() -> None:
    pair = key_pair_generate(Algorithm.ED25519_SHA256)
    assert len(base64.b64decode(pair.public)) == 32
    assert len(base64.b64decode(pair.private)) == 32


def test_record_tags_drop_whitespace_inside_values() -> None:
    assert record_tags("v=DKIM1; k=rsa;\r\n p=AB CD\tEF;") == {
        "v": "DKIM1",
        "k": "rsa",
        "p": "ABCDEF",
    }


def test_each_kind_of_published_record_is_told_apart() -> None:
    key = key_pair_generate(RSA).public
    other = key_pair_generate(RSA).public
    cases = {
        (): CheckResult.MISSING,
        ("v=spf1 -all",): CheckResult.NOT_DKIM,
        (f"v=DKIM1; p={key}", f"v=DKIM1; p={other}"): CheckResult.SEVERAL,
        (f"v=DKIM1; k=ed25519; p={key}",): CheckResult.WRONG_TYPE,
        ("v=DKIM1; k=rsa; p=",): CheckResult.REVOKED,
        (f"v=DKIM1; k=rsa; p={other}",): CheckResult.MISMATCH,
        ("v=DKIM1; k=rsa; p=not base64!",): CheckResult.MISMATCH,
        (f"v=DKIM1; k=rsa; p={key[:100]} {key[100:]}",): CheckResult.OK,
        (f"p={key}",): CheckResult.OK,  # v= and k= are optional (RFC 6376 §3.6.1)
    }
    for records, expected in cases.items():
        assert record_compare(records, algorithm=RSA, public_key=key) is expected, records
