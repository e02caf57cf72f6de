"""Contact Email's two ways to send (issue 8 §6): "one email to all recipients", the default,
where To holds everyone and Cc and Bcc get the email once; and "individually", one email per
To recipient with their own merge fields, each carrying the Cc and Bcc."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
from pytest_django.fixtures import Settings

from postroom.accounts.models import User
from postroom.company.models import Company, SendAsPolicy
from postroom.compose.email_templates import email_template_create
from postroom.compose.services import compose_plan
from postroom.contacts.models import Contact
from postroom.contacts.selectors import contact_history
from postroom.core.errors import ValidationError
from postroom.mail.message import Attachment
from postroom.outbox.models import Message, RecipientKind, SendAs
from tests.compose.conftest import compose_preview, compose_send, contact_make

pytestmark = pytest.mark.django_db

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def cleo(db: None) -> Contact:
    return contact_make("cleo@umbrella.example", first_name="Cleo", last_name="Park")


def parsed(message: Message) -> EmailMessage:
    raw = Message.objects.values_list("raw", flat=True).get(pk=message.pk)
    return cast(EmailMessage, message_from_bytes(bytes(raw or b""), policy=default_policy))


def kinds(message: Message) -> dict[str, str]:
    return dict(message.recipients.values_list("address", "kind"))


def send(user: User, **kwargs: Any) -> list[Message]:
    values: dict[str, Any] = {"subject": "Hello", "text": "Hi.\n"}
    values.update(kwargs)
    return compose_send(user=user, **values)


# One email to all recipients.


def test_one_email_to_all_has_every_to_recipient_in_to_and_the_cc_once(
    company: Company, alice: User, ann: Contact, bob: Contact, cleo: Contact
) -> None:
    (message,) = send(
        alice,
        to=[ann, "bob@initech.example", "Dr Cleo Park <cleo@umbrella.example>"],
        cc=["Carol <carol@partner.example>"],
        bcc=["audit@acme.example"],
        subject="Meeting on Monday, {{ company.name }}",
        text="Dear all,\n\n{{ user.name }}\n",
    )
    mail = parsed(message)
    assert mail["To"] == (
        "Ann Lee <ann@globex.example>, Bob Stone <Bob@initech.example>, "
        "Dr Cleo Park <cleo@umbrella.example>"
    ), "an address typed bare gets its contact's name; a typed name is kept"
    assert mail["Cc"] == "Carol <carol@partner.example>"
    assert mail["Bcc"] is None, "Bcc is in the envelope only"
    assert mail["Subject"] == "Meeting on Monday, Acme"
    assert kinds(message) == {
        "ann@globex.example": RecipientKind.TO,
        "Bob@initech.example": RecipientKind.TO,
        "cleo@umbrella.example": RecipientKind.TO,
        "carol@partner.example": RecipientKind.CC,
        "audit@acme.example": RecipientKind.BCC,
    }
    assert message.sender_user == alice and message.send_as == SendAs.AS_USER


def test_the_group_email_is_in_each_to_contacts_history_with_its_status(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    (message,) = send(alice, to=[ann, bob], cc=["carol@partner.example"], subject="Agenda")
    for contact in (ann, bob):
        (item,) = contact_history(contact=contact, user=alice)
        assert item["subject"] == "Agenda" and item["kind"] == "To"
        assert item["status_label"] == "Queued" and item["url"] == f"/outbox/{message.pk}/"


def test_with_one_to_recipient_the_contact_fields_are_that_contact(
    company: Company, alice: User, ann: Contact
) -> None:
    (message,) = send(
        alice, to=[ann], cc=["carol@partner.example"], subject="Hi {{ contact.first_name }}"
    )
    assert parsed(message)["Subject"] == "Hi Ann"


@pytest.mark.parametrize(
    ("fields", "field", "named"),
    [
        ({"subject": "Hi {{ contact.first_name }}"}, "subject", "{{ contact.first_name }}"),
        (
            {"text": "{{ contact.name }} at {{ contact.company|upper }}"},
            "text",
            "{{ contact.name }}, {{ contact.company }}",
        ),
        ({"text": "", "html": "<p>{{ contact['email'] }}</p>"}, "html", "{{ contact.email }}"),
    ],
)
def test_contact_fields_with_several_to_recipients_are_refused_naming_them(
    company: Company,
    alice: User,
    ann: Contact,
    bob: Contact,
    fields: dict[str, str],
    field: str,
    named: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        send(alice, to=[ann, bob], **fields)
    assert caught.value.field == field
    message = caught.value.message
    assert named in message
    assert "one email to 2 To recipients" in message
    assert "Individually" in message
    assert not Message.objects.exists()


def test_a_saved_templates_contact_fields_are_refused_the_same_way(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    template = email_template_create(
        actor=alice, name="Follow-up", subject="Following up", text="Dear {{ contact.first_name }}",
        html="",
    )  # fmt: skip
    with pytest.raises(ValidationError, match=r"contact\.first_name.*Individually"):
        send(alice, to=[ann, bob], subject="", text="", template=template)


def test_one_email_may_go_to_cc_and_bcc_only(company: Company, alice: User) -> None:
    (message,) = send(alice, to=[], bcc=["a@example.org", "b@example.org"])
    mail = parsed(message)
    assert mail["To"] is None and mail["Bcc"] is None
    assert set(kinds(message).values()) == {RecipientKind.BCC}
    with pytest.raises(ValidationError, match="Add at least one recipient") as caught:
        send(alice, to=[])
    assert caught.value.field == "to"


def test_one_email_to_all_stores_the_attachments_once(
    company: Company, alice: User, settings: Settings
) -> None:
    settings.POSTROOM_MAX_MESSAGE_BYTES = 1024 * 1024
    file = Attachment(filename="f.bin", content_type="application/octet-stream", data=b"x" * 900)
    to = [f"p{index}@example.org" for index in range(12)]
    (message,) = send(alice, to=to, attachments=[file])
    (attachment,) = list(parsed(message).iter_attachments())
    assert attachment.get_filename() == "f.bin"


# Individually.


def test_individually_each_to_gets_their_own_email_carrying_the_cc_and_bcc(
    company: Company, alice: User, ann: Contact, bob: Contact, cleo: Contact
) -> None:
    messages = send(
        alice,
        is_individual=True,
        to=[ann, bob, cleo],
        cc=["Carol <carol@partner.example>"],
        bcc=["audit@acme.example"],
        subject="Your quote, {{ contact.first_name }}",
    )
    assert [parsed(m)["Subject"] for m in messages] == [
        "Your quote, Ann",
        "Your quote, Bob",
        "Your quote, Cleo",
    ]
    for message, contact in zip(messages, (ann, bob, cleo), strict=True):
        mail = parsed(message)
        assert mail["To"] == f"{contact.name} <{contact.email}>", "nobody sees the others"
        assert mail["Cc"] == "Carol <carol@partner.example>"
        assert mail["Bcc"] is None
        assert kinds(message) == {
            contact.email: RecipientKind.TO,
            "carol@partner.example": RecipientKind.CC,
            "audit@acme.example": RecipientKind.BCC,
        }
    for contact in (ann, bob, cleo):
        (item,) = contact_history(contact=contact, user=alice)
        assert item["subject"] == f"Your quote, {contact.first_name}"


def test_the_same_form_sent_again_the_other_way_is_a_conflict_not_a_second_email(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    from postroom.outbox.enqueue import IdempotencyConflictError

    first = send(alice, to=[ann, bob], send_key=KEY)
    assert [m.pk for m in send(alice, to=[ann, bob], send_key=KEY)] == [first[0].pk]
    with pytest.raises(IdempotencyConflictError):
        send(alice, to=[ann, bob], send_key=KEY, is_individual=True)
    assert Message.objects.count() == 1


# What Send will do, said before Send.


def test_the_plan_counts_the_emails_and_each_copy_recipients_copies(
    company: Company, ann: Contact, bob: Contact, cleo: Contact
) -> None:
    to = [ann.email, "BOB@initech.example", "Cleo <cleo@umbrella.example>", ann.email]
    together = compose_plan(
        to=to, cc=["Carol <carol@partner.example>"], bcc=[], is_individual=False
    )
    assert together.messages == 1 and together.copies_each == 1
    assert [a.address.formatted for a in together.to] == [
        "Ann Lee <ann@globex.example>",
        "Bob Stone <Bob@initech.example>",
        "Cleo <cleo@umbrella.example>",
    ]
    apart = compose_plan(
        to=to, cc=["carol@partner.example"], bcc=["x@y.example"], is_individual=True
    )
    assert apart.messages == 3 and apart.copies_each == 3
    assert [a.address.addr_spec for a in apart.copied] == ["carol@partner.example", "x@y.example"]
    assert compose_plan(to=[], cc=[], bcc=[], is_individual=True).messages == 0
    with pytest.raises(ValidationError, match=r"Recipient 1 \(Cc\)"):
        compose_plan(to=[ann.email], cc=["nope"], bcc=[], is_individual=False)


def test_the_preview_of_one_email_to_all_shows_everyone_in_to(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    preview = compose_preview(
        user=alice, to=[ann, bob], cc=["carol@partner.example"], subject="Hi all", text="x",
        number=2,
    )  # fmt: skip
    assert len(preview.composed) == 1, "one email, whatever number was asked"
    assert preview.plan.messages == 1 and not preview.plan.is_individual
    mail = message_from_bytes(preview.raw, policy=default_policy)
    assert mail["To"] == "Ann Lee <ann@globex.example>, Bob Stone <Bob@initech.example>"
    assert mail["Cc"] == "carol@partner.example"
    assert not Message.objects.exists()


def test_the_send_as_policy_applies_to_the_group_email(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    company.send_as_policy = SendAsPolicy.VIA_COMPANY
    company.save()
    (message,) = send(alice, to=[ann, bob])
    mail = parsed(message)
    assert mail["From"] == "Alice Smith via Acme <office@acme.example>"
    assert mail["Reply-To"] == "Alice Smith <alice@acme.example>"
