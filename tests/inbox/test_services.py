"""Storing, finding and clearing captured mail (the database, without the SMTP server)."""

from __future__ import annotations

import pytest

from postroom.audit.models import AuditEntry
from postroom.core.errors import NotFoundError, PermissionDeniedError
from postroom.inbox import selectors, services
from postroom.inbox.models import CapturedMessage
from tests.accounts.factories import admin_make, user_make
from tests.inbox.samples import multipart_mail, plain_mail

pytestmark = pytest.mark.django_db


def _capture(raw: bytes, *, mail_from: str = "alice@example.com", rcpt_tos=None):  # type: ignore[no-untyped-def]
    return services.captured_message_create(
        raw=raw,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos or ["bob@example.net"],
        peer="127.0.0.1:40000",
    )


def test_a_captured_message_keeps_its_bytes_and_a_summary() -> None:
    raw = multipart_mail()
    message = _capture(raw)
    message.refresh_from_db()
    assert selectors.captured_message_raw(message=message) == raw
    assert message.subject == "Quarterly report ☃"
    assert message.has_attachments is True
    assert message.size == len(raw)


def test_mail_that_cannot_be_summarized_is_stored_anyway() -> None:
    raw = b"\xff\xfe\x00 not a message at all"
    message = _capture(raw)
    assert selectors.captured_message_raw(message=message) == raw


def test_the_list_is_newest_first_and_leaves_the_bytes_behind() -> None:
    first = _capture(plain_mail("first"))
    second = _capture(plain_mail("second"))
    listed = list(selectors.captured_message_list(user=admin_make()))
    assert [message.pk for message in listed] == [second.pk, first.pk]
    assert "raw" in listed[0].get_deferred_fields()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("REPORT", {"report"}),  # subject, any case
        ("carol@", {"report"}),  # To header
        ("bcc-only@", {"bcc"}),  # envelope recipient that no header names
        ("jörg@", {"utf8"}),  # a UTF-8 envelope address
        ("bounce@", {"bcc"}),  # envelope sender
        ("", {"report", "bcc", "utf8"}),
        ("nobody-at-all", set()),
    ],
)
def test_search_matches_addresses_and_subjects(query: str, expected: set[str]) -> None:
    _capture(plain_mail("report", to="carol@example.org"))
    _capture(plain_mail("bcc"), mail_from="bounce@example.com", rcpt_tos=["bcc-only@example.com"])
    _capture(plain_mail("utf8"), rcpt_tos=["jörg@bücher.example"])
    admin = admin_make()
    found = {m.subject for m in selectors.captured_message_list(user=admin, query=query)}
    assert found == expected


def test_getting_a_missing_message_says_so() -> None:
    with pytest.raises(NotFoundError):
        selectors.captured_message_get(user=admin_make(), pk=12345)


def test_an_administrator_deletes_all_and_the_audit_log_says_so() -> None:
    admin = admin_make()
    _capture(plain_mail())
    _capture(plain_mail())
    assert services.captured_message_delete_all(actor=admin) == 2
    assert not CapturedMessage.objects.exists()
    entry = AuditEntry.objects.get(action="inbox.delete_all")
    assert entry.actor == admin


def test_a_staff_user_cannot_delete_captured_mail() -> None:
    staff = user_make("sam")
    _capture(plain_mail())
    with pytest.raises(PermissionDeniedError):
        services.captured_message_delete_all(actor=staff)
    assert CapturedMessage.objects.count() == 1
