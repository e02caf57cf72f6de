"""Signed messages verify with dkimpy's own verifier, the key looked up in the test DNS
server; a message changed after signing does not."""

from __future__ import annotations

from typing import Any

import dkim
import pytest
from django.utils import timezone

from postroom.accounts.models import Role, User
from postroom.dkim.models import Algorithm, DkimKey
from postroom.dkim.openssl import OpenSslRsaDkim
from postroom.dkim.services import dkim_key_create, dkim_key_start_signing
from postroom.dkim.signing import DkimSigner, dkim_signer_load
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail, build_message
from tests.dkim.support import publish, signature_count, verified
from tests.support.dns_server import DnsServer

pytestmark = pytest.mark.django_db


def signing_key(
    dns_server: DnsServer, domain: str, algorithm: str = Algorithm.RSA_SHA256
) -> DkimKey:
    admin = User.objects.get_or_create(username="ada", role=Role.ADMINISTRATOR)[0]
    key = dkim_key_create(actor=admin, domain=domain, algorithm=algorithm)
    publish(dns_server, key)
    return dkim_key_start_signing(actor=admin, key=key)


def campaign_message(
    sender: str = "Acme News <news@example.com>", subject: str = "Our December news"
) -> bytes:
    email = OutgoingEmail(
        from_=parse_address(sender),
        to=[parse_address("Bob <bob@example.net>")],
        subject=subject,
        text="Hello Bob,\r\n\r\nThis month: ünïcode, long lines and more.\r\n" * 20,
        html="<p>Hello Bob,</p>" * 20,
        headers={
            "List-Unsubscribe": "<https://example.com/u/1>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    return build_message(email, message_id="<m1@example.com>", date=timezone.now()).raw


def test_an_rsa_signed_message_verifies_and_signs_the_usual_headers(
    dns_server: DnsServer,
) -> None:
    signing_key(dns_server, "example.com")
    signed = dkim_signer_load().sign(campaign_message())
    assert signature_count(signed) == 1
    assert verified(signed)
    head = signed.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")
    assert b"a=rsa-sha256; c=relaxed/relaxed; d=example.com;" in head
    for name in (
        b"from : ",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"mime-version",
        b"content-type",
        b"list-unsubscribe : list-unsubscribe-post",
    ):
        assert name in head, name
    assert head.count(b"from") >= 2  # From over-signed


def test_a_domain_with_rsa_and_ed25519_gets_both_signatures(dns_server: DnsServer) -> None:
    signing_key(dns_server, "example.com")
    signing_key(dns_server, "example.com", Algorithm.ED25519_SHA256)
    signed = dkim_signer_load().sign(campaign_message())
    assert signature_count(signed) == 2
    assert b"a=ed25519-sha256" in signed.split(b"\r\n\r\n", 1)[0]
    assert verified(signed, index=0) and verified(signed, index=1)


def test_an_ed25519_only_domain_verifies(dns_server: DnsServer) -> None:
    signing_key(dns_server, "example.com", Algorithm.ED25519_SHA256)
    signed = dkim_signer_load().sign(campaign_message())
    assert signature_count(signed) == 1 and verified(signed)


@pytest.mark.parametrize("algorithm", [Algorithm.RSA_SHA256, Algorithm.ED25519_SHA256])
def test_a_changed_body_or_subject_fails_verification(
    dns_server: DnsServer, algorithm: Algorithm
) -> None:
    signing_key(dns_server, "example.com", algorithm)
    signed = dkim_signer_load().sign(campaign_message())
    assert verified(signed)
    head, body = signed.split(b"\r\n\r\n", 1)
    changes = [
        head + b"\r\n\r\n" + body.replace(b"<p>", b"<p>Changed ", 1),
        signed.replace(b"Subject: Our December news", b"Subject: Our news", 1),
        # An added second From is caught too: From is over-signed.
        head + b"\r\nFrom: eve@example.com\r\n\r\n" + body,
    ]
    for changed in changes:
        assert changed != signed
        assert not verified(changed)


def test_mail_from_a_domain_without_a_signing_key_passes_unchanged(
    dns_server: DnsServer,
) -> None:
    signing_key(dns_server, "example.com")
    data = campaign_message(sender="Someone <someone@other.example>")
    assert dkim_signer_load().sign(data) is data
    assert DkimSigner().sign(data) is data


def test_the_from_domain_is_matched_whatever_its_case(dns_server: DnsServer) -> None:
    signing_key(dns_server, "example.com")
    signed = dkim_signer_load().sign(campaign_message(sender="News <news@EXAMPLE.com>"))
    assert signature_count(signed) == 1 and verified(signed)


def test_the_snapshot_keeps_its_keys_until_reloaded(dns_server: DnsServer) -> None:
    key = signing_key(dns_server, "example.com")
    snapshot = dkim_signer_load()
    DkimKey.objects.filter(pk=key.pk).delete()
    assert signature_count(snapshot.sign(campaign_message())) == 1
    assert dkim_signer_load().domains == frozenset()


def test_openssl_signs_exactly_as_dkimpy_itself_would(dns_server: DnsServer) -> None:
    # postroom.dkim.openssl replaces one line of dkimpy's gen_header. PKCS#1 v1.5 signatures
    # are deterministic, so signed in the same second (t=) the whole header must be dkimpy's,
    # byte for byte: a dkimpy upgrade that changes gen_header fails here before it ships.
    key = signing_key(dns_server, "example.com")
    loaded = dkim_signer_load().keys["example.com"][0]
    message = campaign_message()
    selector = key.selector.encode()
    options: dict[str, Any] = {
        "signature_algorithm": b"rsa-sha256",
        "canonicalize": (b"relaxed", b"relaxed"),
        "include_headers": [b"from", b"to", b"subject", b"date", b"message-id", b"from"],
    }
    for _ in range(3):  # again if the second changed between the two
        by_dkimpy = dkim.DKIM(message).sign(selector, b"example.com", loaded.private_key, **options)
        by_openssl = OpenSslRsaDkim(message)
        by_openssl.rsa_key = loaded.rsa_key
        ours = by_openssl.sign(selector, b"example.com", loaded.private_key, **options)
        if ours == by_dkimpy:
            break
    assert ours == by_dkimpy
