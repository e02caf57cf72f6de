"""The worker end to end: queued rows in, real SMTP conversations, recorded states out."""

from __future__ import annotations

import datetime as dt
import email
import time
from email.policy import default as default_policy

import pytest
from django.test import override_settings
from django.utils import timezone

from postroom.outbox import wake, worker
from postroom.outbox.models import (
    Attempt,
    Event,
    EventKind,
    Lane,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    ServerPause,
)
from postroom.outbox.pauses import server_resume
from tests.outbox.worker_harness import (
    company_smtp_at,
    enqueue,
    running_worker,
    status_of,
    wait_until,
)
from tests.support.faultsmtp import CLOSE, FaultScript, FaultSession, fault_smtp
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.django_db(transaction=True)


def make_due_now(message: Message) -> None:
    """Skip the backoff wait, and poke the worker as an enqueue or a retry would."""
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    wake.notify_workers()


def test_a_message_is_delivered_byte_identical_and_recorded_as_sent() -> None:
    tricky = "line one\n.\r\n.starts with a dot\rlone CR\nlone LF\r\n..two dots\r\nend"
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net", text=tricky)
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
        received = server.wait_for_messages(1)

    assert len(received) == 1
    assert received[0].content == bytes(message.raw)
    assert received[0].rcpt_tos == ("bob@example.net",)
    recipient = message.recipients.get()
    assert recipient.status == RecipientStatus.SENT
    assert recipient.last_code == 250
    attempt = Attempt.objects.get(message=message)
    assert (attempt.code, attempt.classification) == (250, "success")
    assert attempt.server == f"127.0.0.1:{server.port}"
    kinds = list(Event.objects.filter(message=message).values_list("kind", flat=True))
    assert kinds == [EventKind.MESSAGE_QUEUED, EventKind.MESSAGE_SENT]


def test_one_of_three_recipients_450_is_deferred_then_retried_alone() -> None:
    busy_once = {"carol@example.net": 1}

    def rcpt(session: FaultSession, address: str) -> str:
        if busy_once.get(address):
            busy_once[address] -= 1
            return "450 4.2.1 Mailbox busy, try later"
        return "250 2.1.5 Ok"

    with fault_smtp(FaultScript(rcpt=rcpt)) as server:
        company_smtp_at(server.port)
        message = enqueue("alice@example.net", "bob@example.net", "carol@example.net")
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.DEFERRED, what="deferred")
            statuses = dict(message.recipients.values_list("address", "status"))
            assert statuses == {
                "alice@example.net": RecipientStatus.SENT,
                "bob@example.net": RecipientStatus.SENT,
                "carol@example.net": RecipientStatus.DEFERRED,
            }
            carol = message.recipients.get(address="carol@example.net")
            assert (carol.last_code, carol.last_enhanced_code) == (450, "4.2.1")
            make_due_now(message)
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="retried")

    assert [m.rcpt_tos for m in server.messages] == [
        ("alice@example.net", "bob@example.net"),
        ("carol@example.net",),
    ]
    assert Event.objects.filter(kind=EventKind.MESSAGE_DEFERRED).count() == 1


def test_a_550_fails_only_that_recipient() -> None:
    script = SmtpdScript(recipient_replies={"gone@example.net": "550 5.1.1 No such user"})
    with ScriptedSmtpServer(script) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net", "gone@example.net")
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.PARTIAL, what="partial")

    statuses = dict(message.recipients.values_list("address", "status"))
    assert statuses == {"bob@example.net": "sent", "gone@example.net": "failed"}
    assert server.wait_for_messages(1)[0].rcpt_tos == ("bob@example.net",)


def test_all_recipients_refused_means_failed_and_no_message_sent() -> None:
    script = SmtpdScript(default_recipient_reply="550 5.7.1 <{address}>: Recipient rejected")
    with ScriptedSmtpServer(script) as server:
        company_smtp_at(server.port)
        message = enqueue("a@example.net", "b@example.net")
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.FAILED, what="failed")
    assert server.messages == []


def test_a_lost_connection_after_the_final_dot_is_retried_once_with_the_same_message_id() -> None:
    hang_ups = [True]

    def end_of_data(session: FaultSession, content: bytes) -> object:
        if hang_ups:
            hang_ups.pop()
            return CLOSE
        return "250 2.0.0 Ok: queued"

    with fault_smtp(FaultScript(end_of_data=end_of_data)) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net")
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.DEFERRED, what="uncertain")
            recipient = message.recipients.get()
            assert recipient.uncertain_count == 1
            assert "same Message-ID" in recipient.last_text
            assert Event.objects.filter(kind=EventKind.MESSAGE_UNCERTAIN).count() == 1
            make_due_now(message)
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")

    copies = [email.message_from_bytes(m.content, policy=default_policy) for m in server.messages]
    assert len(copies) == 2
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"] == message.message_id


def test_a_second_lost_connection_leaves_the_message_uncertain() -> None:
    with fault_smtp(FaultScript(end_of_data=CLOSE)) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net")
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.DEFERRED, what="uncertain")
            make_due_now(message)
            wait_until(lambda: status_of(message) == MessageStatus.UNCERTAIN, what="final")
    assert message.recipients.get().status == RecipientStatus.UNCERTAIN
    assert len(server.messages) == 2


def test_a_wrong_password_pauses_the_server_instead_of_failing_the_queue() -> None:
    script = SmtpdScript(users={"mailer": "right"}, auth_before_tls=True)
    with ScriptedSmtpServer(script) as server:
        # A plain-text test server: the password may cross it only when allowed.
        company = company_smtp_at(server.port, smtp_login="mailer", smtp_allow_plaintext_auth=True)
        from postroom.core.secrets import secret_encrypt

        company.smtp_password_encrypted = secret_encrypt("wrong")
        company.save()
        messages = [enqueue(f"user{n}@example.net") for n in range(20)]
        with running_worker():
            wait_until(lambda: ServerPause.objects.exists(), what="pause")
            time.sleep(0.3)  # the worker must not keep trying meanwhile
        attempts_while_paused = len(server.auth_attempts)

    pause = ServerPause.objects.get()
    assert pause.server == f"127.0.0.1:{server.port}"
    assert pause.code == 535
    # At most one login per connection the pool opened at once (the company's maximum, 4):
    # the other messages go back to the queue untried.
    assert attempts_while_paused <= 4
    assert not Recipient.objects.filter(status=RecipientStatus.FAILED).exists()
    for message in messages:
        assert status_of(message) in {MessageStatus.QUEUED, MessageStatus.SENDING}
    server_resume(server=pause.server)
    assert not ServerPause.objects.exists()


def test_a_persons_message_leaves_at_once_when_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long idle wake, so only the enqueue's poke can send it within the bound below,
    # whatever the machine's load (how fast it leaves is bench/'s to measure).
    monkeypatch.setattr(worker, "IDLE_WAKE_SECONDS", 60.0)
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        with running_worker():
            time.sleep(0.5)  # the worker is idle, asleep until the next due time
            started = time.monotonic()
            message = enqueue("bob@example.net")
            wait_until(lambda: status_of(message) == MessageStatus.SENT, timeout=5, what="sent")
            elapsed = time.monotonic() - started
    assert elapsed < 20, f"took {elapsed:.2f} s: the enqueue did not wake the worker"


def test_transactional_mail_overtakes_a_bulk_backlog() -> None:
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        for n in range(600):
            enqueue(f"member{n}@example.net", subject="Newsletter", lane=Lane.BULK)
        with running_worker(concurrency=2, batch_size=20):
            wait_until(
                lambda: Message.objects.filter(status=MessageStatus.SENT).count() >= 20,
                what="the campaign to start",
            )
            personal = enqueue("customer@example.net", subject="Your quote")
            wait_until(lambda: status_of(personal) == MessageStatus.SENT, what="personal")
            bulk_left = (
                Message.objects.filter(lane=Lane.BULK).exclude(status=MessageStatus.SENT).count()
            )
    assert bulk_left > 300, f"only {bulk_left} bulk messages were still waiting"


@override_settings(POSTROOM_RETRY_GIVE_UP_SECONDS=1)
def test_a_message_past_its_expiry_fails_without_being_sent() -> None:
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        message = enqueue("bob@example.net")
        Message.objects.filter(pk=message.pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.FAILED, what="expired")
    assert server.messages == []
    assert "Expired" in message.recipients.get().last_text


def test_a_persons_message_overtakes_a_rate_limited_campaign_already_claimed() -> None:
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port, smtp_max_connections=1, smtp_rate_per_second=20)
        for n in range(300):
            enqueue(f"member{n}@example.net", subject="Newsletter", lane=Lane.BULK)
        with running_worker(batch_size=50):
            wait_until(lambda: len(server.messages) >= 5, what="the campaign to start")
            started = time.monotonic()
            personal = enqueue("customer@example.net", subject="Your quote")
            wait_until(lambda: status_of(personal) == MessageStatus.SENT, what="personal")
            elapsed = time.monotonic() - started
    # At 20 a second the 50-odd bulk messages claimed ahead of it would take 2.5 s or more.
    assert elapsed < 1.5, f"the person's email waited {elapsed:.2f} s behind the campaign"
