import datetime as dt

from postroom.outbox.models import Classification, MessageStatus, RecipientStatus
from postroom.outbox.retry import RetryPolicy
from postroom.outbox.states import message_status_for, recipient_after

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=5)
POLICY = RetryPolicy()


def after(
    classification: Classification,
    *,
    uncertain_count: int = 0,
    failed_attempts: int = 1,
    expires_at: dt.datetime = LATER,
):
    return recipient_after(
        classification,
        uncertain_count=uncertain_count,
        failed_attempts=failed_attempts,
        expires_at=expires_at,
        now=NOW,
        policy=POLICY,
    )


def test_success_means_sent_and_nothing_more_to_do() -> None:
    transition = after(Classification.SUCCESS)
    assert (transition.status, transition.next_attempt_at) == (RecipientStatus.SENT, None)


def test_a_permanent_failure_fails_the_recipient_at_once() -> None:
    assert after(Classification.PERMANENT).status == RecipientStatus.FAILED


def test_a_temporary_failure_defers_with_backoff() -> None:
    transition = after(Classification.TEMPORARY, failed_attempts=2)
    assert transition.status == RecipientStatus.DEFERRED
    assert transition.next_attempt_at == NOW + dt.timedelta(minutes=10)


def test_a_temporary_failure_after_expiry_gives_up() -> None:
    transition = after(Classification.TEMPORARY, expires_at=NOW + dt.timedelta(minutes=1))
    assert transition.status == RecipientStatus.FAILED
    assert "Gave up" in transition.note


def test_an_uncertain_delivery_is_retried_once_then_left_uncertain() -> None:
    first = after(Classification.UNCERTAIN)
    assert first.status == RecipientStatus.DEFERRED
    assert first.uncertain_count == 1
    assert first.next_attempt_at == NOW + POLICY.uncertain_delay
    second = after(Classification.UNCERTAIN, uncertain_count=1)
    assert (second.status, second.next_attempt_at) == (RecipientStatus.UNCERTAIN, None)


def test_a_configuration_problem_keeps_the_recipient_queued() -> None:
    transition = after(Classification.CONFIG)
    assert transition.status == RecipientStatus.QUEUED
    assert transition.next_attempt_at is not None


def test_the_message_status_summarises_its_recipients() -> None:
    assert message_status_for(["sent", "sent"]) == MessageStatus.SENT
    assert message_status_for(["sent", "failed"]) == MessageStatus.PARTIAL
    assert message_status_for(["failed", "failed"]) == MessageStatus.FAILED
    assert message_status_for(["sent", "deferred"]) == MessageStatus.DEFERRED
    assert message_status_for(["queued", "sent"]) == MessageStatus.QUEUED
    assert message_status_for(["uncertain", "sent"]) == MessageStatus.UNCERTAIN
    assert message_status_for(["cancelled"]) == MessageStatus.CANCELLED
    assert message_status_for(["cancelled", "sent"]) == MessageStatus.PARTIAL


def test_success_at_the_sandbox_capture_is_captured_never_sent() -> None:
    transition = recipient_after(
        Classification.SUCCESS,
        uncertain_count=0,
        failed_attempts=1,
        expires_at=LATER,
        now=NOW,
        policy=POLICY,
        is_captured=True,
    )
    assert (transition.status, transition.next_attempt_at) == (RecipientStatus.CAPTURED, None)
    assert message_status_for(["captured", "captured"]) == MessageStatus.CAPTURED
    assert message_status_for(["captured", "failed"]) == MessageStatus.PARTIAL
