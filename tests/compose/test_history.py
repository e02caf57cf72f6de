"""The contact's history, the user's "Sent", and the saved templates' rules."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.company.models import Company
from postroom.compose.email_templates import (
    email_template_create,
    email_template_delete,
    email_template_get_by_ref,
    email_template_update,
)
from postroom.compose.models import EmailTemplate
from postroom.compose.selectors import (
    compose_contact_search,
    sent_message_list,
    sent_page,
)
from postroom.contacts.models import Contact
from postroom.contacts.selectors import contact_history
from postroom.core.errors import PermissionDeniedError, ValidationError
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Recipient, RecipientStatus, Source
from tests.accounts.factories import admin_make, user_make
from tests.compose.conftest import compose_send, contact_make

pytestmark = pytest.mark.django_db


def write(user: User, to: list[object], subject: str, **kwargs: object) -> list[Message]:
    return compose_send(user=user, to=to, subject=subject, text="Hi.", **kwargs)  # type: ignore[arg-type]


# History.


def test_the_history_lists_every_message_to_the_address_newest_first_with_its_status(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    first = write(alice, [ann], "First")[0]
    write(alice, [bob], "To Bob only")
    write(alice, [bob], "Ann in copy", cc=["ANN@GLOBEX.EXAMPLE"])
    Recipient.objects.filter(message=first).update(status=RecipientStatus.SENT)
    # Mail from elsewhere (the API, another user) to the same address counts too.
    message_enqueue(
        email=OutgoingEmail(
            from_=parse_address("erp@acme.example"),
            to=[parse_address("Ann@Globex.example")],
            subject="Invoice 7",
        ),
        source=Source.API,
    )

    history = contact_history(contact=ann, user=alice)
    assert [item["subject"] for item in history] == ["Invoice 7", "Ann in copy", "First"]
    invoice, copy, first_item = history
    assert first_item["status"] == "sent" and first_item["status_label"] == "Sent"
    assert copy["kind"] == "Cc" and copy["status_label"] == "Queued"
    assert first_item["sender"] == "Alice Smith"
    assert invoice["sender"] == "erp@acme.example"
    assert first_item["url"] == f"/outbox/{first.pk}/"
    assert invoice["url"] is None, "alice may not open a message she did not send"


def test_administrators_get_a_link_to_every_message_and_others_to_none_of_alices(
    company: Company, alice: User, ann: Contact
) -> None:
    (message,) = write(alice, [ann], "Quote")
    root = admin_make("root")
    sam = user_make("sam", role=Role.STAFF)
    assert contact_history(contact=ann, user=root)[0]["url"] == f"/outbox/{message.pk}/"
    (item,) = contact_history(contact=ann, user=sam)
    assert item["url"] is None and item["subject"] == "Quote"


def test_a_contact_with_no_mail_has_an_empty_history(company: Company, ann: Contact) -> None:
    assert contact_history(contact=ann, user=admin_make()) == []


# Sent.


def test_sent_lists_only_the_users_own_mail_even_for_administrators(
    company: Company, alice: User, ann: Contact
) -> None:
    root = admin_make("root", email="root@acme.example")
    mine = write(
        alice,
        [ann, "x@example.org"],
        "Mine",
        cc=["c1@example.org", "c2@example.org"],
        is_individual=True,
    )
    write(root, [ann], "Root's")
    page = sent_page(user=alice)
    assert [m.subject for m in page.messages] == ["Mine", "Mine"]
    assert page.messages[0].pk == mine[1].pk, "newest first"
    assert [m.subject for m in sent_page(user=root).messages] == ["Root's"]
    first = page.messages[0]
    assert first.recipient_count == 3 and first.more_recipients == 0  # type: ignore[attr-defined]
    assert sent_message_list(user=root, ids=[m.pk for m in mine]) == []


def test_sent_pages_through_older_mail(company: Company, alice: User, ann: Contact) -> None:
    for index in range(5):
        write(alice, [ann], f"M{index}")
    first = sent_page(user=alice, per_page=2)
    assert [m.subject for m in first.messages] == ["M4", "M3"]
    assert first.newer_than is None and first.older_than is not None
    second = sent_page(user=alice, before=first.older_than, per_page=2)
    assert [m.subject for m in second.messages] == ["M2", "M1"]
    back = sent_page(user=alice, after=second.newer_than, per_page=2)
    assert [m.subject for m in back.messages] == ["M4", "M3"]


def test_the_contact_search_finds_active_contacts_by_any_word(
    company: Company, ann: Contact, bob: Contact
) -> None:
    contact_make("gone@globex.example", first_name="Gone", is_active=False)
    assert [c.email for c in compose_contact_search(query="globex")] == ["ann@globex.example"]
    assert [c.email for c in compose_contact_search(query="bob sto")] == ["Bob@initech.example"]
    assert compose_contact_search(query="a") == [], "one letter matches too much"


# Templates.


def test_a_template_is_checked_and_its_html_sanitized_when_saved(alice: User) -> None:
    template = email_template_create(
        actor=alice,
        name="  Welcome   letter ",
        subject="Welcome, {{ contact.first_name }}",
        text="ignored when there is HTML",
        html="<p onclick='x()'>Hi {{ contact.first_name }}<script>x()</script></p>",
    )
    assert template.name == "Welcome letter" and template.name_key == "welcome letter"
    assert template.html == "<p>Hi {{ contact.first_name }}</p>"
    assert template.text == ""
    assert AuditEntry.objects.filter(action="email_template.create").exists()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"subject": "Hi {{ contact.nick }}"}, "subject", "contact.nick"),
        ({"text": "{% for x in contact.name %}{% endfor %}"}, "body", "not allowed"),
        ({"html": "<p>{{ self }}</p>", "text": ""}, "body", "not allowed"),
        ({"text": "{{ contact.first_name"}, "body", "syntax error"),
        ({"subject": "", "text": " "}, "text", "empty"),
        ({"name": " "}, "name", "name"),
        ({"subject": "Hi\r\nBcc: x@example.org"}, "subject", "line break"),
    ],
)
def test_a_broken_template_is_refused_when_saved(
    alice: User, fields: dict[str, str], field: str, words: str
) -> None:
    values = {"name": "T", "subject": "S", "text": "Body", "html": ""}
    values.update(fields)
    with pytest.raises(ValidationError) as caught:
        email_template_create(actor=alice, **values)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not EmailTemplate.objects.exists()


def test_template_names_are_unique_without_regard_to_case(alice: User) -> None:
    email_template_create(actor=alice, name="Quote", subject="S", text="B", html="")
    with pytest.raises(ValidationError, match="exists already"):
        email_template_create(actor=alice, name="QUOTE", subject="S", text="B", html="")


def test_only_the_author_and_administrators_change_a_template(alice: User) -> None:
    template = email_template_create(actor=alice, name="Quote", subject="S", text="B", html="")
    sam = user_make("sam", role=Role.STAFF)
    with pytest.raises(PermissionDeniedError):
        email_template_update(
            actor=sam, template=template, name="Mine", subject="S", text="B", html=""
        )
    with pytest.raises(PermissionDeniedError):
        email_template_delete(actor=sam, template=template)
    root = admin_make()
    email_template_update(
        actor=root, template=template, name="Quote v2", subject="S2", text="B", html=""
    )
    template.refresh_from_db()
    assert template.name == "Quote v2" and template.subject == "S2"
    email_template_delete(actor=alice, template=template)
    assert not EmailTemplate.objects.exists()


def test_a_template_is_found_by_id_or_name(alice: User) -> None:
    template = email_template_create(actor=alice, name="Quote", subject="S", text="B", html="")
    assert email_template_get_by_ref(ref=str(template.pk)) == template
    assert email_template_get_by_ref(ref="quote") == template
    with pytest.raises(ValidationError) as caught:
        email_template_get_by_ref(ref="99999999999999999999999")
    assert caught.value.code == "unknown_template" and caught.value.field == "template"
