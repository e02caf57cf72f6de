"""The Contact Email pages: compose, preview, send, templates, "Sent", the contact's history,
with roles and CSRF."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.compose.email_templates import email_template_create
from postroom.compose.models import EmailTemplate
from postroom.contacts import services
from postroom.contacts.models import Contact
from postroom.outbox.models import Message, Recipient, RecipientStatus, Source
from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def company(db: None) -> Company:
    company = company_get()
    company.name = "Acme"
    company.sender_name = "Acme"
    company.sender_email = "office@acme.example"
    company.send_as_policy = SendAsPolicy.AS_USER
    company.save()
    return company


@pytest.fixture
def alice() -> User:
    return user_make("alice", email="alice@acme.example", display_name="Alice Smith")


@pytest.fixture
def staff(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def ann() -> Contact:
    return services.contact_create(
        actor=None, email="ann@globex.example", first_name="Ann", last_name="Lee",
        organization_name="Globex",
    )  # fmt: skip


@pytest.fixture
def bob() -> Contact:
    return services.contact_create(
        actor=None, email="bob@initech.example", first_name="Bob", last_name="Stone"
    )


def client_for(user: User, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": KEY,
        "to": "",
        "cc": "",
        "bcc": "",
        "template": "",
        "subject": "Hello {{ contact.first_name }}",
        "text": "Dear {{ contact.name }},\n\nhere is the quote.\n",
        "html": "",
        "preview": "1",
        "action": "send",
    }
    data.update(overrides)
    return data


def field_errors(page: str) -> str:
    return " ".join(
        html.unescape(error) for error in re.findall(r'class="field-error"[^>]*>([^<]*)<', page)
    )


# Access.


@pytest.mark.parametrize(
    "url", ["/compose/", "/templates/", "/templates/new/", "/sent/", "/compose/contacts/?q=an"]
)
def test_the_pages_need_a_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post("/compose/preview/", form()).status_code == 302


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.STAFF, Role.MARKETER])
def test_every_role_composes_and_sends(role: str, ann: Contact) -> None:
    user = user_make(f"u-{role}", role=role, email=f"{role}@acme.example")
    client = client_for(user)
    page = client.get("/compose/").content.decode()
    assert "One email to all recipients" in page
    response = client.post("/compose/", form(to=ann.email))
    assert response.status_code == 302, field_errors(response.content.decode())
    (message,) = Message.objects.all()
    assert message.sender_user == user and message.source == Source.COMPOSE


def test_the_nav_shows_compose(staff: Client) -> None:
    assert '<a href="/compose/" aria-current="page">Compose</a>' in (
        staff.get("/compose/").content.decode()
    )


def test_a_post_without_its_csrf_token_is_refused(alice: User, ann: Contact) -> None:
    client = client_for(alice, csrf=True)
    assert client.post("/compose/", form(to=ann.email)).status_code == 403
    assert client.post("/compose/preview/", form(to=ann.email)).status_code == 403
    assert (
        client.post("/templates/new/", {"name": "T", "subject": "S", "text": "B"}).status_code
        == 403
    )
    assert not Message.objects.exists() and not EmailTemplate.objects.exists()


def test_a_user_without_an_address_is_told_to_add_one_and_gets_no_form(ann: Contact) -> None:
    client = client_for(user_make("noaddress", email=""))
    page = client.get("/compose/").content.decode()
    assert "You have no email address yet" in page
    assert 'href="/profile/"' in page
    assert 'id="compose-form"' not in page
    response = client.post("/compose/", form(to=ann.email))
    assert response.status_code == 200 and not Message.objects.exists()


# Compose and send.


def test_the_contact_page_links_to_compose_and_the_contacts_are_filled_in(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    detail = staff.get(f"/contacts/{ann.pk}/").content.decode()
    assert f'href="/compose/?contact={ann.pk}"' in detail
    page = staff.get(f"/compose/?contact={ann.pk}&contact={bob.pk}").content.decode()
    to = re.search(r'<textarea name="to"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert to is not None
    assert html.unescape(to.group(1)).strip().splitlines() == [
        "Ann Lee <ann@globex.example>",
        "Bob Stone <bob@initech.example>",
    ]


def test_the_from_line_says_what_the_send_as_policy_does(staff: Client, company: Company) -> None:
    assert "Alice Smith &lt;alice@acme.example&gt;" in staff.get("/compose/").content.decode()
    company.send_as_policy = SendAsPolicy.VIA_COMPANY
    company.save()
    page = staff.get("/compose/").content.decode()
    assert "Alice Smith via Acme &lt;office@acme.example&gt;" in page and "Reply-To" in page
    company.send_as_policy = SendAsPolicy.AUTO
    company.save()
    assert "If the mail server refuses your address" in staff.get("/compose/").content.decode()


def test_sending_queues_one_message_per_to_and_confirms_with_links(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    response = staff.post(
        "/compose/",
        form(
            to=f"Ann Lee <{ann.email}>, {bob.email}",
            cc="carol@partner.example",
            delivery="individually",
        ),
    )
    assert response.status_code == 302
    first, second = Message.objects.order_by("id")
    assert response["Location"] == f"/compose/queued/?message={first.pk}&message={second.pk}"
    assert [first.subject, second.subject] == ["Hello Ann", "Hello Bob"]
    page = staff.get(response["Location"]).content.decode()
    assert "2 messages queued in the outbox." in page
    assert "2 emails, one per To recipient, in the outbox" in page
    assert f'href="/outbox/{first.pk}/"' in page and f'href="/outbox/{second.pk}/"' in page
    assert f'href="/contacts/{ann.pk}/"' in page and f'href="/contacts/{bob.pk}/"' in page
    # Submitting the same form again (a double click) queues nothing more.
    again = form(
        to=f"{ann.email}, {bob.email}", cc="carol@partner.example", delivery="individually"
    )
    assert staff.post("/compose/", again).status_code == 302
    assert Message.objects.count() == 2
    # The same form sent back changed (the browser's Back button keeps it) is not taken for
    # the first one: the page says so, and queues nothing.
    changed = staff.post("/compose/", form(to=f"{ann.email}, {bob.email}", delivery="individually"))
    assert changed.status_code == 200
    assert "This form was sent before" in changed.content.decode()
    assert Message.objects.count() == 2


def test_the_confirmation_shows_only_the_users_own_messages(staff: Client, ann: Contact) -> None:
    staff.post("/compose/", form(to=ann.email))
    message = Message.objects.get()
    other = client_for(user_make("sam"))
    page = other.get(f"/compose/queued/?message={message.pk}").content.decode()
    assert "Hello Ann" not in page and "No message of yours" in page


def test_bad_input_comes_back_with_errors_next_to_the_fields_and_nothing_lost(
    staff: Client, ann: Contact
) -> None:
    upload = SimpleUploadedFile("quote.pdf", b"%PDF-1.7", content_type="application/pdf")
    response = staff.post(
        "/compose/",
        form(
            to=f"{ann.email}\nnot-an-address",
            cc="bad@@example.org",
            subject="Keep me",
            text="Keep this text too",
            attachments=upload,
        ),
    )
    assert response.status_code == 200
    page = response.content.decode()
    errors = field_errors(page)
    assert "Recipient 2 (To)" in errors and "Recipient 1 (Cc)" in errors
    assert 'value="Keep me"' in page and "Keep this text too" in page
    assert "not-an-address" in page
    assert "Choose the attachments again" in page
    assert not Message.objects.exists()


def test_a_template_error_is_shown_next_to_the_message(staff: Client, ann: Contact) -> None:
    page = staff.post(
        "/compose/", form(to=ann.email, text="{{ ''.__class__.__mro__ }}")
    ).content.decode()
    assert "not allowed in a template" in field_errors(page)
    assert not Message.objects.exists()


def test_attachments_are_sent_and_too_big_ones_refused_naming_the_limit(
    staff: Client, ann: Contact, settings: Settings
) -> None:
    files = [
        SimpleUploadedFile("a.pdf", b"%PDF-a", content_type="application/pdf"),
        SimpleUploadedFile("b.txt", b"bee", content_type="text/plain"),
    ]
    assert staff.post("/compose/", form(to=ann.email, attachments=files)).status_code == 302
    raw = bytes(Message.objects.get().raw or b"")
    assert b'filename="a.pdf"' in raw and b'filename="b.txt"' in raw

    settings.POSTROOM_MAX_MESSAGE_BYTES = 100
    big = SimpleUploadedFile("big.bin", b"x" * 101)
    page = staff.post("/compose/", form(to=ann.email, attachments=big, key="f" * 32))
    errors = field_errors(page.content.decode())
    assert "0.0 MB" in errors or "100 bytes" in errors
    assert "POSTROOM_MAX_MESSAGE_BYTES" in errors
    assert Message.objects.count() == 1


def test_an_upload_far_over_the_limit_is_stopped_while_it_arrives(
    staff: Client, ann: Contact, settings: Settings
) -> None:
    settings.POSTROOM_MAX_MESSAGE_BYTES = 1000
    huge = SimpleUploadedFile("huge.bin", b"x" * (3 * 1024 * 1024))
    response = staff.post("/compose/", form(to=ann.email, attachments=huge))
    assert response.status_code == 200
    assert "POSTROOM_MAX_MESSAGE_BYTES" in field_errors(response.content.decode())
    assert not Message.objects.exists()


def test_rich_text_that_comes_back_is_sanitized_before_the_editor_gets_it(
    staff: Client,
) -> None:
    page = staff.post(
        "/compose/",
        form(to="", text="", html="<p>Hi<img src=x onerror=alert(1)><script>x()</script></p>"),
    ).content.decode()
    initial = re.search(r'data-initial-html="([^"]*)"', page)
    assert initial is not None and html.unescape(initial.group(1)) == "<p>Hi</p>"


def test_the_rich_text_body_is_sent_with_a_text_part(staff: Client, ann: Contact) -> None:
    staff.post(
        "/compose/", form(to=ann.email, text="", html="<p>Dear <b>{{ contact.first_name }}</b></p>")
    )
    raw = bytes(Message.objects.get().raw or b"")
    assert b"multipart/alternative" in raw and b"<b>Ann</b>" in raw and b"Dear Ann" in raw


# Preview.


def test_the_preview_shows_the_exact_message_for_one_recipient_and_queues_nothing(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    response = staff.post(
        "/compose/preview/",
        form(
            to=f"{ann.email}\n{bob.email}",
            text="",
            html="<p>Dear {{ contact.first_name }}</p>",
            preview="2",
            delivery="individually",
            attachments=SimpleUploadedFile("q.pdf", b"%PDF", content_type="application/pdf"),
        ),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Message to bob@initech.example" in page
    assert "Alice Smith &lt;alice@acme.example&gt;" in page
    assert "Hello Ann" in page and "Hello Bob" in page
    assert '<iframe class="mail-html" sandbox="" srcdoc="' in page
    assert "&lt;p&gt;Dear Bob&lt;/p&gt;" in page  # the HTML part, escaped into srcdoc
    assert "Dear Bob" in page  # the text part
    assert "Content-Type: multipart/mixed" in page  # the source
    assert "q.pdf" in page
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not Message.objects.exists()


def test_the_preview_names_the_via_company_version_under_auto(
    staff: Client, ann: Contact, company: Company
) -> None:
    company.send_as_policy = SendAsPolicy.AUTO
    company.save()
    page = staff.post("/compose/preview/", form(to=ann.email)).content.decode()
    assert "Alice Smith via Acme &lt;office@acme.example&gt;" in page


def test_a_preview_with_errors_lists_them(staff: Client) -> None:
    page = staff.post("/compose/preview/", form(to="nobody")).content.decode()
    assert "Nothing to preview yet" in page and "Recipient 1 (To)" in html.unescape(page)
    page = staff.post("/compose/preview/", form(to="")).content.decode()
    assert "at least one recipient" in page


def test_the_preview_is_post_only(staff: Client) -> None:
    assert staff.get("/compose/preview/").status_code == 405


# Recipient suggestions and templates on the compose page.


def test_the_contact_search_suggests_contacts_with_their_address(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    page = staff.get("/compose/contacts/", {"q": "glob"}).content.decode()
    assert 'data-address="Ann Lee &lt;ann@globex.example&gt;"' in page
    assert "bob@initech.example" not in page
    assert (
        "No active contact matches"
        in staff.get("/compose/contacts/", {"q": "zzz"}).content.decode()
    )


def test_a_template_fills_the_compose_form(staff: Client, alice: User, ann: Contact) -> None:
    template = email_template_create(
        actor=alice, name="Quote", subject="Quote for {{ contact.first_name }}",
        text="", html="<p>Dear {{ contact.first_name }}</p>",
    )  # fmt: skip
    values = staff.get(f"/compose/template/{template.pk}/").json()
    assert values["subject"] == "Quote for {{ contact.first_name }}"
    assert values["html"] == "<p>Dear {{ contact.first_name }}</p>"
    assert values["text"] == "Dear {{ contact.first_name }}\n"
    assert staff.get("/compose/template/999/").status_code == 404

    page = staff.get(f"/compose/?template={template.pk}&contact={ann.pk}").content.decode()
    assert 'value="Quote for {{ contact.first_name }}"' in page
    # Without scripts: "Use template" fills the form and keeps the recipients.
    page = staff.post(
        "/compose/",
        form(to=ann.email, subject="", text="", template=str(template.pk), action="template"),
    ).content.decode()
    assert 'value="Quote for {{ contact.first_name }}"' in page and ann.email in page
    assert not Message.objects.exists()


# Templates.


def test_templates_are_created_listed_and_used_by_everyone(alice: User, staff: Client) -> None:
    response = staff.post(
        "/templates/new/",
        {
            "name": "Welcome",
            "subject": "Welcome {{ contact.first_name }}",
            "text": "Hi!",
            "html": "",
        },
    )
    assert response.status_code == 302
    template = EmailTemplate.objects.get()
    assert template.created_by == alice
    other = client_for(user_make("sam", role=Role.MARKETER))
    page = other.get("/templates/").content.decode()
    assert "Welcome" in page and f"/compose/?template={template.pk}" in page
    assert f"/templates/{template.pk}/edit/" not in page


def test_a_broken_template_is_refused_with_the_error_next_to_the_field(staff: Client) -> None:
    page = staff.post(
        "/templates/new/", {"name": "T", "subject": "Hi {{ contact.nick }}", "text": "x"}
    ).content.decode()
    assert "contact.nick" in field_errors(page)
    page = staff.post(
        "/templates/new/", {"name": "T", "subject": "Hi", "text": "{{ self }}"}
    ).content.decode()
    assert "not allowed" in field_errors(page)
    assert not EmailTemplate.objects.exists()


def test_only_the_author_and_administrators_edit_and_delete(alice: User, staff: Client) -> None:
    template = email_template_create(actor=alice, name="Quote", subject="S", text="B", html="")
    sam = client_for(user_make("sam"))
    assert sam.get(f"/templates/{template.pk}/edit/").status_code == 403
    assert sam.post(f"/templates/{template.pk}/delete/").status_code == 403
    root = client_for(admin_make())
    response = root.post(
        f"/templates/{template.pk}/edit/",
        {"name": "Quote v2", "subject": "S2", "text": "B2", "html": ""},
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.subject, template.text) == ("Quote v2", "S2", "B2")
    assert staff.get(f"/templates/{template.pk}/edit/").status_code == 200
    assert staff.post(f"/templates/{template.pk}/delete/").status_code == 302
    assert not EmailTemplate.objects.exists()


# Sent and history.


def test_sent_lists_the_users_own_mail_with_its_status(staff: Client, ann: Contact) -> None:
    staff.post("/compose/", form(to=ann.email))
    message = Message.objects.get()
    Recipient.objects.filter(message=message).update(status=RecipientStatus.SENT)
    Message.objects.filter(pk=message.pk).update(status="sent")
    page = staff.get("/sent/").content.decode()
    assert "Hello Ann" in page and f'href="/outbox/{message.pk}/"' in page
    assert '<span class="badge ok">Sent</span>' in page
    assert "Hello Ann" not in client_for(admin_make()).get("/sent/").content.decode()


def test_the_contact_page_shows_the_history_with_each_status(staff: Client, ann: Contact) -> None:
    staff.post("/compose/", form(to=ann.email))
    message = Message.objects.get()
    Recipient.objects.filter(message=message).update(status=RecipientStatus.SENT)
    page = staff.get(f"/contacts/{ann.pk}/").content.decode()
    history = page[page.index('id="history-title"') :]
    assert "Hello Ann" in history and '<span class="badge ok">Sent</span>' in history
    assert f'href="/outbox/{message.pk}/"' in history
    assert "Alice Smith" in history
    # Someone else sees the entry, without a link to alice's message.
    other = client_for(user_make("sam")).get(f"/contacts/{ann.pk}/").content.decode()
    assert "Hello Ann" in other and f'href="/outbox/{message.pk}/"' not in other


# One email to all, or individually (issue 8 §6).


@pytest.fixture
def cleo() -> Contact:
    return services.contact_create(
        actor=None, email="cleo@umbrella.example", first_name="Cleo", last_name="Park"
    )


def plan_text(page: str) -> str:
    found = re.search(r'<p class="send-plan"[^>]*>(.*?)</p>', page, re.DOTALL)
    assert found is not None, "the page says what Send will do"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def test_the_page_offers_one_email_to_all_by_default_and_individually(staff: Client) -> None:
    page = staff.get("/compose/").content.decode()
    assert re.search(r'<input type="radio" name="delivery" value="together"[^>]* checked>', page)
    assert re.search(r'<input type="radio" name="delivery" value="individually"[^>]*>', page)
    assert "Individually (one email each, with their own merge fields)" in page
    assert "a Cc'd colleague receives one copy per To recipient" in page
    assert "need “Individually” when there are several To recipients" in page
    assert plan_text(page) == "Add a recipient."
    individually = staff.get("/compose/?delivery=individually").content.decode()
    assert re.search(r'value="individually"[^>]* checked>', individually)


def test_send_and_preview_are_in_the_action_bar_with_what_send_will_do(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    page = staff.get(f"/compose/?contact={ann.pk}&contact={bob.pk}").content.decode()
    bar = page[page.index('class="compose-actions"') :]
    assert 'value="send" aria-keyshortcuts="Control+Enter"' in bar
    assert 'value="preview" formaction="/compose/preview/"' in bar
    assert plan_text(page) == (
        "One email to 2 recipients: everyone in To and Cc sees who else got it."
    )


def test_one_email_to_all_queues_one_message_to_everyone_and_confirms_it(
    staff: Client, ann: Contact, bob: Contact, cleo: Contact
) -> None:
    response = staff.post(
        "/compose/",
        form(
            to=f"{ann.email}\n{bob.email}\n{cleo.email}",
            cc="Carol <carol@partner.example>",
            bcc="audit@acme.example",
            subject="Meeting on Monday",
            text="Dear all,\n",
        ),
    )
    assert response.status_code == 302, field_errors(response.content.decode())
    message = Message.objects.get()
    raw = bytes(message.raw or b"").decode()
    assert (
        "To: Ann Lee <ann@globex.example>, Bob Stone <bob@initech.example>,\r\n"
        " Cleo Park <cleo@umbrella.example>\r\n"
    ) in raw
    assert "Cc: Carol <carol@partner.example>\r\n" in raw and "audit@" not in raw
    page = staff.get(response["Location"]).content.decode()
    assert "1 message queued in the outbox." in page and "1 email in the outbox" in page
    assert 'carol@partner.example <small class="muted">(Cc)</small>' in page
    assert 'audit@acme.example <small class="muted">(Bcc)</small>' in page
    for contact in (ann, bob, cleo):
        assert f'href="/contacts/{contact.pk}/"' in page
        history = staff.get(f"/contacts/{contact.pk}/").content.decode()
        assert "Meeting on Monday" in history[history.index('id="history-title"') :]


def test_contact_fields_in_one_email_to_several_come_back_naming_them_and_the_way_out(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    response = staff.post(
        "/compose/",
        form(to=f"{ann.email}, {bob.email}", subject="Hello", text="Dear {{ contact.name }},"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    errors = field_errors(page)
    assert "{{ contact.name }}" in errors and "one email to 2 To recipients" in errors
    assert 'Choose "Individually"' in errors
    summary = page[page.index('id="compose-errors"') : page.index("</ul>")]
    assert "Nothing was sent." in summary and 'href="#message-body"' in summary
    assert "Nothing was sent: see the problems" in page
    assert re.search(r'value="together"[^>]* checked>', page), "the choice is kept"
    assert not Message.objects.exists()
    # Individually, the same letter goes out, one email each.
    assert (
        staff.post(
            "/compose/",
            form(
                to=f"{ann.email}, {bob.email}",
                text="Dear {{ contact.first_name }},",
                delivery="individually",
            ),
        ).status_code
        == 302
    )
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["Hello Ann", "Hello Bob"]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"delivery": "together"}, "One email to 4 recipients: everyone in To and Cc sees who "
         "else got it."),
        ({"delivery": "together", "cc": "", "to": "ann@globex.example", "bcc": "x@y.example"},
         "One email to 2 recipients: Bcc stays hidden."),
        ({"delivery": "individually"}, "3 emails, one per To recipient: each sees only their "
         "own address. Carol (Cc) will receive 3 copies, one of each email."),
        ({"delivery": "individually", "bcc": "audit@acme.example"}, "3 emails, one per To "
         "recipient: each sees only their own address. Carol (Cc) and audit@acme.example "
         "(Bcc) will each receive 3 copies, one of each email."),
        ({"delivery": "individually", "cc": "a@x.example, b@x.example, c@x.example, d@x.example"},
         "3 emails, one per To recipient: each sees only their own address. a@x.example (Cc), "
         "b@x.example (Cc), c@x.example (Cc) and 1 more will each receive 3 copies, one of "
         "each email."),
        ({"delivery": "individually", "to": ""}, "Add a To recipient: each gets their own email."),
        ({"cc": "carol@@partner.example"}, "Recipient 1 (Cc): "),
    ],
)  # fmt: skip
def test_what_send_will_do_is_said_as_the_recipients_are_typed(
    staff: Client, ann: Contact, bob: Contact, cleo: Contact, fields: dict[str, str], said: str
) -> None:
    data = {
        "to": "ann@globex.example\nBOB@initech.example\nCleo <cleo@umbrella.example>",
        "cc": "Carol <carol@partner.example>",
        "bcc": "",
        **fields,
    }
    response = staff.post("/compose/plan/", data)
    assert response.status_code == 200
    assert plan_text(response.content.decode()).startswith(said)


def test_what_send_will_do_needs_a_login_and_the_csrf_token(alice: User) -> None:
    assert Client().post("/compose/plan/", {"to": "a@x.example"}).status_code == 302
    assert client_for(alice, csrf=True).post("/compose/plan/", {}).status_code == 403
    assert client_for(alice).get("/compose/plan/").status_code == 405


def test_the_preview_of_one_email_to_all_shows_everyone_in_to(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    page = staff.post(
        "/compose/preview/",
        form(
            to=f"{ann.email}\n{bob.email}", cc="carol@partner.example", subject="Hi all", text="x"
        ),
    ).content.decode()
    assert "One email to all recipients" in page and "The email" in page
    assert (
        "<dt>To</dt><dd>Ann Lee &lt;ann@globex.example&gt;, Bob Stone &lt;bob@initech.example"
        "&gt;</dd>"
    ) in page
    assert "<dt>Cc</dt><dd>carol@partner.example</dd>" in page
    assert "One email to 3 recipients" in plan_text(page)
    assert not Message.objects.exists()


def test_the_preview_sent_individually_says_how_many_copies_the_cc_gets(
    staff: Client, ann: Contact, bob: Contact
) -> None:
    page = staff.post(
        "/compose/preview/",
        form(to=f"{ann.email}\n{bob.email}", cc="Carol <carol@partner.example>",
             delivery="individually"),
    ).content.decode()  # fmt: skip
    assert "2 emails, one per To recipient" in page and "Message to ann@globex.example" in page
    assert "Carol (Cc) will receive 2 copies, one of each email." in plan_text(page)


def test_sent_marks_the_cc_and_bcc_of_a_group_email(staff: Client, ann: Contact) -> None:
    staff.post("/compose/", form(to=ann.email, cc="carol@partner.example"))
    page = staff.get("/sent/").content.decode()
    assert 'carol@partner.example <small class="muted">(Cc)</small>' in page
