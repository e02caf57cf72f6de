"""Who may read captured mail (issue 7, finding 6): the Outbox's rule, its sender or an
administrator, and another user's mail answers 404 as if it did not exist.

The mail is really sent: users queue it, the outbox worker delivers it over SMTP to the
capture server on 127.0.0.1, and the pages are asked for it.
"""

from __future__ import annotations

import smtplib

import pytest
from django.test import Client
from django.urls import reverse

from postroom.accounts.models import User
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from postroom.mail.addresses import parse_address
from postroom.mail.message import Attachment, OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Source
from tests.accounts.factories import admin_make, user_make
from tests.outbox.worker_harness import running_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CONFIDENTIAL = "Alice's salary review"


def send_as(user: User, subject: str) -> Message:
    return message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(user.email),
            to=[parse_address("hr@example.net")],
            subject=subject,
            text="Confidential.\n",
            attachments=[Attachment("review.txt", "text/plain", b"numbers\n")],
        ),
        source=Source.COMPOSE,
        sender_user=user,
    )


@pytest.fixture
def captured(capture_server: CaptureServer) -> dict[str, CapturedMessage]:
    """Alice's and Bob's mail, delivered by the worker, and a message from outside the
    outbox sent straight to the capture port."""
    alice, bob = user_make("alice"), user_make("bob")
    send_as(alice, CONFIDENTIAL)
    send_as(bob, "Bob's holiday request")
    with running_worker():
        wait_until(lambda: CapturedMessage.objects.count() == 2, what="two captured messages")
    with smtplib.SMTP("127.0.0.1", capture_server.port, timeout=10) as smtp:
        smtp.sendmail(
            "cron@example.com",
            ["ops@example.net"],
            b"From: cron@example.com\r\nSubject: Nightly backup\r\n\r\nDone.\r\n",
        )
    return {
        "alice": CapturedMessage.objects.get(subject=CONFIDENTIAL),
        "bob": CapturedMessage.objects.get(subject="Bob's holiday request"),
        "outside": CapturedMessage.objects.get(subject="Nightly backup"),
    }


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_user_lists_only_the_mail_they_sent(captured: dict[str, CapturedMessage]) -> None:
    bob = client_of(User.objects.get(username="bob"))
    page = bob.get(reverse("inbox")).content.decode()
    assert "Bob&#x27;s holiday request" in page
    assert "salary review" not in page
    assert "Nightly backup" not in page
    assert "You see the captured mail you sent; administrators see all of it." in page
    assert "Delete all" not in page  # only administrators empty the inbox
    searched = bob.get(reverse("inbox"), {"q": "salary"}).content.decode()
    assert "salary review" not in searched


@pytest.mark.parametrize(
    "name_and_args",
    [("inbox_message", []), ("inbox_message_raw", []), ("inbox_attachment", [1])],
)
def test_another_users_captured_mail_is_not_found(
    captured: dict[str, CapturedMessage], name_and_args: tuple[str, list[int]]
) -> None:
    name, extra = name_and_args
    bob = client_of(User.objects.get(username="bob"))
    for other in (captured["alice"], captured["outside"]):
        response = bob.get(reverse(name, args=[other.pk, *extra]))
        assert response.status_code == 404
        assert b"numbers" not in response.content and b"Done." not in response.content
    missing = bob.get(reverse(name, args=[captured["outside"].pk + 100, *extra]))
    assert missing.status_code == 404  # the same answer as for mail that does not exist


def test_the_sender_reads_their_own_captured_mail(captured: dict[str, CapturedMessage]) -> None:
    alice = client_of(User.objects.get(username="alice"))
    message = captured["alice"]
    assert alice.get(reverse("inbox_message", args=[message.pk])).status_code == 200
    assert alice.get(reverse("inbox_attachment", args=[message.pk, 1])).content == b"numbers\n"
    raw = alice.get(reverse("inbox_message_raw", args=[message.pk]))
    assert bytes(message.raw) == raw.content


def test_an_administrator_reads_everything_captured(captured: dict[str, CapturedMessage]) -> None:
    admin = client_of(admin_make())
    page = admin.get(reverse("inbox")).content.decode()
    assert "salary review" in page and "holiday request" in page and "Nightly backup" in page
    for message in captured.values():
        assert admin.get(reverse("inbox_message", args=[message.pk])).status_code == 200
