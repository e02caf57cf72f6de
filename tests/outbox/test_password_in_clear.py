"""The outbox worker against a relay that would take the password in plain text (issue 7,
finding 6): it pauses the server with the reason on the Outbox page, loses no mail, and
delivers once an administrator allowed the password over plain text and resumed sending.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from postroom.company.selectors import company_get
from postroom.company.services import SmtpSettingsInput, company_smtp_update
from postroom.outbox.models import Attempt, Classification, MessageStatus, ServerPause
from postroom.outbox.pauses import server_resume
from tests.accounts.factories import admin_make
from tests.outbox.worker_harness import enqueue, running_worker, status_of, wait_until
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]

IN_CLEAR = "your password would travel in clear"


def configure(relay: PostfixRelay, *, allow_plaintext_auth: bool) -> None:
    """Secure Connection Required = N, on the relay's port that offers no TLS, with a login:
    as the page saves it."""
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host=relay.host,
            smtp_port=relay.plain_port,
            smtp_secure_required=False,
            smtp_login=relay.user,
            smtp_password=relay.password,
            smtp_allow_plaintext_auth=allow_plaintext_auth,
            sender_email=relay.allowed_senders[0],
            smtp_timeout_connect=10,
            smtp_timeout_command=20,
            smtp_timeout_data=20,
        ),
    )


def test_the_server_pauses_with_the_reason_shown_and_the_mail_waits(
    relay_mailbox: PostfixRelay, client: Client
) -> None:
    relay = relay_mailbox
    configure(relay, allow_plaintext_auth=False)
    message = enqueue("someone@example.net", subject="Kept back")

    with running_worker():
        wait_until(ServerPause.objects.exists, what="the server to pause")

    pause = ServerPause.objects.get()
    assert IN_CLEAR in pause.reason
    assert status_of(message) not in (MessageStatus.SENT, MessageStatus.FAILED)
    [attempt] = Attempt.objects.filter(message=message)
    assert (attempt.stage, attempt.classification) == ("auth", Classification.CONFIG)
    assert IN_CLEAR in attempt.text
    assert relay.messages() == []
    client.force_login(admin_make())
    page = client.get(reverse("outbox")).content.decode()
    assert IN_CLEAR in page


def test_once_allowed_and_resumed_the_waiting_mail_is_delivered(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox
    configure(relay, allow_plaintext_auth=False)
    message = enqueue("someone@example.net", subject="Sent at last")
    with running_worker():
        wait_until(ServerPause.objects.exists, what="the server to pause")

        configure(relay, allow_plaintext_auth=True)
        server_resume(server=ServerPause.objects.get().server)

        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent", timeout=30)
    assert company_get().smtp_allow_plaintext_auth
    [delivered] = relay.wait_for(1)
    assert delivered["Subject"] == "Sent at last"
