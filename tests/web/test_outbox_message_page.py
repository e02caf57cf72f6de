"""The Outbox message page says what happened to each recipient in plain words (the reply
table's, as Check connection), keeps the server's reply under Details, and shows the message's
body and attachments the way the Sandbox capture does (issue 8 §4, §5).

The failure is real: the worker delivers to a scripted SMTP server that refuses one address.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from postroom.mail.addresses import parse_address
from postroom.mail.message import Attachment, OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Source
from tests.accounts.factories import admin_make
from tests.outbox.worker_harness import company_smtp_at, message_finished, running_worker
from tests.support.smtpd import scripted_smtpd as scripted_smtpd  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

NOBODY = "nobody@example.net"


def test_a_refused_recipient_is_explained_and_the_body_and_attachment_are_shown(
    scripted_smtpd: Any,
) -> None:
    server = scripted_smtpd(
        recipient_replies={NOBODY: f"550 5.1.1 <{NOBODY}>: Recipient address rejected"}
    )
    company_smtp_at(server.port)
    message = message_enqueue(
        email=OutgoingEmail(
            from_=parse_address("Shop <shop@example.com>"),
            to=[parse_address("ann@example.net"), parse_address(NOBODY)],
            subject="Invoice 2026-0042",
            text="Dear Ann,\n\nyour invoice is attached.\n",
            html="<p>Dear Ann,</p><p>your invoice is attached.</p>",
            attachments=[Attachment("invoice-0042.pdf", "application/pdf", b"%PDF-1.7 " * 100)],
        ),
        source=Source.API,
    )
    with running_worker():
        message_finished(message)

    client = Client()
    client.force_login(admin_make())
    response = client.get(reverse("outbox_message", args=[message.pk]))
    page = response.content.decode()
    start = page.index(NOBODY, page.index('id="recipients-heading"'))
    row = page[start : page.index("</tr>", start)]
    explanation = re.search(r'<p class="explanation">([^<]+)</p>', row)
    assert explanation, row
    assert "does not exist" in explanation.group(1)
    assert "<summary>Details</summary><code>550 5.1.1" in row, "the reply, under Details"

    assert "your invoice is attached." in page  # the text part
    assert 'iframe class="mail-html" sandbox=""' in page  # the HTML part, sandboxed
    assert "invoice-0042.pdf" in page and "900\u00a0bytes" in page  # its name and size
    assert response["Content-Security-Policy"].startswith("default-src 'none'")

    download = client.get(reverse("outbox_attachment", args=[message.pk, 1]))
    assert download.content == b"%PDF-1.7 " * 100
    assert download["Content-Type"] == "application/octet-stream"


def test_an_address_its_server_says_does_not_exist_flags_the_contact(
    scripted_smtpd: Any,
) -> None:
    from postroom.contacts.services import contact_create

    server = scripted_smtpd(
        recipient_replies={NOBODY: f"550 5.1.1 <{NOBODY}>: Recipient address rejected"}
    )
    company_smtp_at(server.port)
    admin = admin_make()
    nobody = contact_create(actor=admin, email=NOBODY, first_name="Nobody")
    ann = contact_create(actor=admin, email="ann@example.net", first_name="Ann")
    message = message_enqueue(
        email=OutgoingEmail(
            from_=parse_address("Shop <shop@example.com>"),
            to=[parse_address(ann.email), parse_address(NOBODY)],
            subject="News",
            text="Hello.",
        ),
        source=Source.API,
    )
    with running_worker():
        message_finished(message)

    client = Client()
    client.force_login(admin)
    listing = client.get(reverse("contact_list")).content.decode()
    flagged = re.findall(r"<td>([^<]+) <span class=\"badge bad\"[^>]*>address refused", listing)
    assert flagged == [NOBODY]
    page = client.get(reverse("contact_detail", args=[nobody.pk])).content.decode()
    assert "The last email to this address failed:</strong> The recipient" in page
    assert "does not exist" in page
