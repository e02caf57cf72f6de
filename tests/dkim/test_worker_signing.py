"""The real worker signs at the last moment: a queued message arrives at a real SMTP server
signed over the exact bytes received, and verifies; mail from an unsigned domain arrives as
queued."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import SendAsPolicy
from postroom.dkim.models import Algorithm
from postroom.dkim.services import dkim_key_create, dkim_key_start_signing
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import MessageStatus, Source
from tests.dkim.support import publish, signature_count, verified
from tests.outbox.worker_harness import (
    company_on_relay,
    company_smtp_at,
    enqueue,
    message_finished,
    running_worker,
)
from tests.support.dns_server import DnsServer
from tests.support.relay import PostfixRelay
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.django_db(transaction=True)


def start_signing(dns_server: DnsServer, domain: str, algorithm: str) -> None:
    admin = User.objects.get_or_create(username="ada", role=Role.ADMINISTRATOR)[0]
    key = dkim_key_create(actor=admin, domain=domain, algorithm=algorithm)
    publish(dns_server, key)
    dkim_key_start_signing(actor=admin, key=key)


def test_a_queued_message_arrives_signed_and_verifies(dns_server: DnsServer) -> None:
    start_signing(dns_server, "example.com", Algorithm.RSA_SHA256)
    start_signing(dns_server, "example.com", Algorithm.ED25519_SHA256)
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net", subject="Signed on the way out")
        with running_worker():
            message_finished(message)
        received = server.wait_for_messages(1)

    assert message.status == MessageStatus.SENT
    data = received[0].content
    assert data.endswith(bytes(message.raw))  # the signatures go in front, nothing else changes
    assert signature_count(data) == 2
    assert verified(data, index=0) and verified(data, index=1)
    assert not verified(data.replace(b"Signed on the way out", b"Signed on the way in", 1))


def test_mail_from_a_domain_without_a_signing_key_arrives_as_queued(
    dns_server: DnsServer,
) -> None:
    start_signing(dns_server, "other.example", Algorithm.RSA_SHA256)
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net")  # from alice@example.com: no key
        with running_worker():
            message_finished(message)
        received = server.wait_for_messages(1)
    assert received[0].content == bytes(message.raw)


@pytest.mark.relay
def test_the_send_as_fallback_is_signed_and_verifies_after_the_real_postfix_relay(
    dns_server: DnsServer, relay_mailbox: PostfixRelay
) -> None:
    # The relay refuses alice@example.com as sender; Postroom sends the "via the company"
    # version (From relayuser@example.com) instead: that is the one signed and delivered.
    start_signing(dns_server, "example.com", Algorithm.RSA_SHA256)
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.sender_check_port, policy=SendAsPolicy.AUTO
    )
    alice = User.objects.create(
        username="alice", display_name="Alice Smith", email="alice@example.com", role=Role.STAFF
    )
    email = OutgoingEmail(
        from_=parse_address(alice.email),
        to=[parse_address("contact@example.net")],
        subject="Your quote",
        text="Here it is.",
    )
    message = message_enqueue(email=email, source=Source.COMPOSE, sender_user=alice)
    assert message.fallback_raw is not None
    with running_worker():
        message_finished(message)
    relay_mailbox.wait_for(1)
    # Postfix stores mail with LF line ends; on the wire (what a receiver checks) it is CRLF.
    delivered = relay_mailbox.raw_messages()[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    assert message.status == MessageStatus.SENT
    assert f"From: Alice Smith via Acme <{company.sender_email}>".encode() in delivered
    assert b"Received: " in delivered  # the relay added its header and the signature held
    assert signature_count(delivered) == 1
    assert verified(delivered)
