"""Reading the bounce mailbox from a real Dovecot: each mail once, put aside, never deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from django.db import connection
from django.utils import timezone

from postroom.bounces.models import BounceMailbox, BounceReport, SeenMail
from postroom.bounces.polling import mailbox_poll, mailbox_poll_due, run_bounce_poller
from postroom.bounces.selectors import bounce_mailbox_get
from postroom.core.secrets import secret_encrypt
from tests.bounces.mails import dsn, not_a_bounce
from tests.support.certs import CertAuthority
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSED = "Postroom/Processed"


def configure(
    dovecot: DovecotServer,
    ca: CertAuthority,
    *,
    protocol: str = "imap",
    security: str = "tls",
    with_ca: bool = True,
    password: str | None = None,
) -> tuple[str, str]:
    """A fresh user at the test Dovecot, and the bounce mailbox pointed at it."""
    user, secret = dovecot.user_add()
    ports = {
        ("imap", "tls"): dovecot.imaps_port,
        ("imap", "starttls"): dovecot.imap_port,
        ("imap", "none"): dovecot.imap_port,
        ("pop3", "tls"): dovecot.pop3s_port,
        ("pop3", "starttls"): dovecot.pop3_port,
        ("pop3", "none"): dovecot.pop3_port,
    }
    mailbox = bounce_mailbox_get()
    mailbox.is_enabled = True
    mailbox.protocol = protocol
    mailbox.security = security
    mailbox.host = "127.0.0.1"
    mailbox.port = ports[(protocol, security)]
    mailbox.username = user
    mailbox.password_encrypted = secret_encrypt(password if password is not None else secret)
    mailbox.ca_certificate = ca.pem if with_ca else ""
    mailbox.processed_folder = PROCESSED
    mailbox.save()
    return user, secret


def test_imap_reads_each_new_mail_once_and_moves_it_to_the_processed_folder(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca)
    dovecot.deliver(user, dsn("gone@example.net"))
    dovecot.deliver(user, not_a_bounce())

    first = mailbox_poll(runner="test")

    assert first.is_ok, first.message
    assert first.read == 2 and first.failed == 0
    assert dovecot.messages(user) == []
    assert len(dovecot.messages(user, PROCESSED)) == 2
    assert BounceReport.objects.count() == 2
    assert sorted(BounceReport.objects.values_list("mailbox_ref", flat=True)) == [
        "INBOX UID 1",
        "INBOX UID 2",
    ]
    mailbox = BounceMailbox.objects.get(pk=1)
    assert mailbox.last_poll_ok and mailbox.last_poll_at is not None
    assert mailbox.last_poll_message.startswith("Read 2 new mails")

    again = mailbox_poll(runner="test")
    assert again.read == 0 and again.message == "No new mail."
    assert BounceReport.objects.count() == 2


def test_imap_reads_mail_that_arrives_after_a_poll(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca, security="starttls")
    dovecot.deliver(user, dsn("one@example.net"))
    assert mailbox_poll(runner="test").read == 1
    dovecot.deliver(user, dsn("two@example.net"))

    assert mailbox_poll(runner="test").read == 1
    assert len(dovecot.messages(user, PROCESSED)) == 2
    assert BounceReport.objects.count() == 2


def test_pop3_reads_each_new_mail_once_and_never_deletes(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca, protocol="pop3", security="starttls")
    dovecot.deliver(user, dsn("gone@example.net"))
    dovecot.deliver(user, not_a_bounce())

    first = mailbox_poll(runner="test")

    assert first.is_ok, first.message
    assert first.read == 2
    assert len(dovecot.messages(user)) == 2  # still on the server: no DELE
    assert SeenMail.objects.filter(uidl__startswith="pop3 ").count() == 2
    assert all(
        ref.startswith("UIDL ")
        for ref in BounceReport.objects.values_list("mailbox_ref", flat=True)
    )

    assert mailbox_poll(runner="test").read == 0
    dovecot.deliver(user, dsn("later@example.net"))
    assert mailbox_poll(runner="test").read == 1
    assert BounceReport.objects.count() == 3
    assert len(dovecot.messages(user)) == 3


def test_pop3_with_tls_from_the_first_byte(dovecot: DovecotServer, test_ca: CertAuthority) -> None:
    user, _ = configure(dovecot, test_ca, protocol="pop3", security="tls")
    dovecot.deliver(user, dsn())

    assert mailbox_poll(runner="test").read == 1


def test_imap_without_tls_on_a_trusted_network(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca, security="none", with_ca=False)
    dovecot.deliver(user, dsn())

    assert mailbox_poll(runner="test").read == 1


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_wrong_password_says_so_and_is_recorded_on_the_mailbox(
    dovecot: DovecotServer, test_ca: CertAuthority, protocol: str
) -> None:
    user, _ = configure(dovecot, test_ca, protocol=protocol, password="not-the-password")
    dovecot.deliver(user, dsn())

    result = mailbox_poll(runner="test")

    assert not result.is_ok
    mailbox = BounceMailbox.objects.get(pk=1)
    assert not mailbox.last_poll_ok
    assert "password" in mailbox.last_poll_message
    assert user in mailbox.last_poll_message
    assert "not-the-password" not in mailbox.last_poll_message
    assert len(dovecot.messages(user)) == 1
    assert BounceReport.objects.count() == 0


def test_the_tests_ca_is_refused_until_it_is_configured(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca, with_ca=False)
    dovecot.deliver(user, dsn())

    refused = mailbox_poll(runner="test")
    assert not refused.is_ok
    assert "is not trusted" in refused.message and "CA certificate" in refused.message

    BounceMailbox.objects.filter(pk=1).update(ca_certificate=test_ca.pem)
    assert mailbox_poll(runner="test").read == 1


def test_a_missing_folder_is_named(dovecot: DovecotServer, test_ca: CertAuthority) -> None:
    configure(dovecot, test_ca)
    BounceMailbox.objects.filter(pk=1).update(folder="Bounces")

    result = mailbox_poll(runner="test")

    assert not result.is_ok
    assert "“Bounces” does not exist" in result.message


def test_a_poll_held_by_another_process_does_not_run(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca)
    dovecot.deliver(user, dsn())
    BounceMailbox.objects.filter(pk=1).update(
        poll_claim_token="other",
        poll_claimed_by="worker-2",
        poll_lease_until=timezone.now() + dt.timedelta(minutes=5),
    )

    busy = mailbox_poll(runner="test")

    assert busy.is_busy and busy.read == 0
    assert len(dovecot.messages(user)) == 1

    # The other process died: once its lease ends, the mailbox is polled again.
    BounceMailbox.objects.filter(pk=1).update(
        poll_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert mailbox_poll(runner="test").read == 1
    assert BounceMailbox.objects.get(pk=1).poll_claim_token == ""


def test_the_worker_polls_only_when_enabled_and_due(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca)
    dovecot.deliver(user, dsn())
    BounceMailbox.objects.filter(pk=1).update(is_enabled=False)
    assert mailbox_poll_due(runner="test") is None

    BounceMailbox.objects.filter(pk=1).update(is_enabled=True, poll_minutes=5)
    polled = mailbox_poll_due(runner="test")
    assert polled is not None and polled.read == 1

    dovecot.deliver(user, dsn())
    assert mailbox_poll_due(runner="test") is None  # polled a moment ago
    later = timezone.now() + dt.timedelta(minutes=5, seconds=1)
    again = mailbox_poll_due(runner="test", now=later)
    assert again is not None and again.read == 1


# Dovecot's own capabilities after login, less MOVE (RFC 6851), and less UIDPLUS as well.
_WITHOUT_MOVE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND "
    "UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE ESEARCH "
    "LITERAL+"
)


@pytest.mark.parametrize("capability", [_WITHOUT_MOVE, _WITHOUT_MOVE.replace(" UIDPLUS", "")])
def test_a_server_without_move_gets_a_copy_first_and_loses_nothing(
    test_ca: CertAuthority, capability: str
) -> None:
    with DovecotServer(ca=test_ca, imap_capability=capability) as server:
        user, _ = configure(server, test_ca)
        server.deliver(user, dsn("one@example.net"))
        server.deliver(user, not_a_bounce())

        assert mailbox_poll(runner="test").read == 2
        assert len(server.messages(user, PROCESSED)) == 2
        left = server.messages(user)
        if "UIDPLUS" in capability:  # copied, then that one original expunged
            assert left == []
        else:  # copied; the original stays, marked read, and is not read again
            assert len(left) == 2
        assert mailbox_poll(runner="test").read == 0
        assert BounceReport.objects.count() == 2


def test_the_workers_poller_reads_the_mailbox_in_its_thread_and_stops(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    user, _ = configure(dovecot, test_ca)
    dovecot.deliver(user, dsn())

    async def run() -> None:
        stop = asyncio.Event()
        poller = asyncio.create_task(run_bounce_poller(name="worker-1", stop=stop))
        deadline = time.monotonic() + 20
        while not await asyncio.to_thread(_polled) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(poller, 10)

    asyncio.run(run())

    mailbox = BounceMailbox.objects.get(pk=1)
    assert mailbox.last_poll_ok and mailbox.last_poll_message.startswith("Read 1 new mail")
    assert mailbox.poll_claim_token == ""
    assert BounceReport.objects.count() == 1


def _polled() -> bool:
    try:
        return BounceMailbox.objects.filter(pk=1, last_poll_at__isnull=False).exists()
    finally:
        connection.close()


def test_tls_from_the_first_byte_on_a_plain_port_says_the_security_may_not_match(
    dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    configure(dovecot, test_ca)
    BounceMailbox.objects.filter(pk=1).update(port=dovecot.imap_port)

    result = mailbox_poll(runner="test")

    assert not result.is_ok
    assert result.message.startswith(f"TLS with 127.0.0.1:{dovecot.imap_port} failed")
    assert "IMAP uses 993 with TLS from the first byte, 143 with STARTTLS" in result.message
