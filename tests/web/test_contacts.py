"""The Contacts pages: list, search, filters, selection, create, edit, delete, companies,
export, and the CSV import pages with their progress bar."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.contacts import services
from postroom.contacts.models import Contact, ImportJob, ImportStatus, Organization
from postroom.queue.models import Job, JobState
from tests.accounts.factories import user_make
from tests.contacts.importer import job_run_here

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_data_dir(settings: Settings, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path / "data"


def client_for(role: str, username: str | None = None) -> Client:
    client = Client()
    client.force_login(user_make(username or role, role=role))
    return client


@pytest.fixture
def staff() -> Client:
    return client_for(Role.STAFF, "sam")


def contact_make(email: str, **kwargs: object) -> Contact:
    return services.contact_create(actor=None, email=email, **kwargs)  # type: ignore[arg-type]


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "first_name": "Ann",
        "last_name": "Smith",
        "email": "ann@example.com",
        "phone": "",
        "organization_name": "",
        "tags": "",
        "notes": "",
        "marketing_consent_at": "",
        "marketing_consent_source": "",
        "is_active": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def field_errors(html: str) -> str:
    return " ".join(re.findall(r'class="(?:field|form)-error"[^>]*>([^<]*)<', html))


def listed(client: Client, query: str = "") -> list[str]:
    html = client.get("/contacts/" + query).content.decode()
    return re.findall(r'<td><a href="/contacts/\d+/">([^<]+)</a></td>', html)


# Access.


def test_the_pages_need_a_login() -> None:
    for page in ["/contacts/", "/contacts/new/", "/contacts/export.csv", "/contacts/import/"]:
        response = Client().get(page)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.STAFF, Role.MARKETER])
def test_every_role_views_and_edits_contacts(role: str) -> None:
    client = client_for(role)
    ann = contact_make("ann@example.com", first_name="Ann")
    assert client.get("/contacts/").status_code == 200
    assert client.get(f"/contacts/{ann.pk}/").status_code == 200
    response = client.post(f"/contacts/{ann.pk}/edit/", form_data(first_name="Anne"))
    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.first_name == "Anne"


def test_the_nav_links_to_the_contacts(staff: Client) -> None:
    assert '<a href="/contacts/" aria-current="page">Contacts</a>' in (
        staff.get("/contacts/").content.decode()
    )


def test_a_form_posted_without_its_csrf_token_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_make("sam"))
    assert client.post("/contacts/new/", form_data()).status_code == 403
    ann = contact_make("ann@example.com")
    assert client.post(f"/contacts/{ann.pk}/delete/").status_code == 403
    upload = SimpleUploadedFile("c.csv", b"email\nann@example.com\n")
    assert client.post("/contacts/import/", {"file": upload}).status_code == 403
    assert Contact.objects.count() == 1 and not ImportJob.objects.exists()


# The list.


def test_the_list_searches_filters_and_pages(staff: Client) -> None:
    acme = services.organization_create(actor=None, name="Acme")
    contact_make("ann@acme.example", first_name="Ann", last_name="Smith", organization_name="Acme",
                 tags="vip", marketing_consent=True)  # fmt: skip
    contact_make("bob@other.example", first_name="Bob", last_name="Jones", is_active=False)
    for index in range(55):
        contact_make(f"z{index:02}@bulk.example", first_name="Zed", last_name=f"Z{index:02}")

    assert listed(staff, "?q=acme") == ["Ann Smith"]
    assert listed(staff, "?q=jones") == ["Bob Jones"]
    assert listed(staff, "?tag=vip") == ["Ann Smith"]
    assert listed(staff, f"?company={acme.pk}") == ["Ann Smith"]
    assert listed(staff, "?consent=yes") == ["Ann Smith"]
    assert listed(staff, "?active=inactive") == ["Bob Jones"]
    first = listed(staff)
    assert len(first) == 50 and first[:2] == ["Bob Jones", "Ann Smith"]
    second = listed(staff, "?page=2")
    assert second == [f"Zed Z{index:02}" for index in range(48, 55)]
    html = staff.get("/contacts/?q=zed&page=2").content.decode()
    assert "55 of 57 contacts match the filter; page 2 of 2." in html
    assert 'href="?q=zed&amp;page=1" rel="prev"' in html


def test_each_row_has_a_selection_checkbox_named_contact(staff: Client) -> None:
    ann = contact_make("ann@example.com", first_name="Ann")
    html = staff.get("/contacts/").content.decode()
    assert re.search(r'<form class="card" id="contact-selection" method="get"', html)
    assert f'<input type="checkbox" name="contact" value="{ann.pk}"' in html


# Create, edit, detail, delete.


def test_a_contact_is_created_with_its_company_and_tags(staff: Client) -> None:
    response = staff.post(
        "/contacts/new/",
        form_data(organization_name="Acme", tags="VIP, customer", marketing_consent="on",
                  marketing_consent_source="web form", phone="+49 30 1234"),
    )  # fmt: skip
    ann = Contact.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/{ann.pk}/"
    assert ann.organization is not None and ann.organization.name == "Acme"
    assert sorted(tag.name for tag in ann.tags.all()) == ["customer", "vip"]
    assert ann.marketing_consent and ann.marketing_consent_source == "web form"
    assert ann.created_by is not None and ann.created_by.username == "sam"
    assert AuditEntry.objects.filter(action="contact.created", actor__username="sam").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "ann@"}, "email", "is not valid"),
        ({"email": ""}, "email", "required"),
        ({"first_name": "Ann\r\nBcc: victim@example.com"}, "first_name", "line break"),
        ({"last_name": "Sm\nith"}, "last_name", "line break"),
        ({"tags": "ok, " + "x" * 51}, "tags", "use at most 50"),
        ({"marketing_consent_at": "2999-01-01"}, "marketing_consent_at", "in the future"),
    ],
)
def test_a_bad_contact_is_refused_with_the_error_next_to_its_field(
    staff: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = staff.post("/contacts/new/", form_data(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in field_errors(html)
    block = html.split(f'for="id_{field}"')[0].rsplit('<div class="field', 1)[1]
    assert block.startswith(" has-error")
    assert not Contact.objects.exists()


def test_an_address_another_contact_has_in_other_case_is_refused(staff: Client) -> None:
    contact_make("ann@example.com")
    response = staff.post("/contacts/new/", form_data(email="ANN@Example.com"))
    assert "already has the address" in field_errors(response.content.decode())
    assert Contact.objects.count() == 1


def test_editing_shows_the_values_and_saves_changes(staff: Client) -> None:
    ann = contact_make("ann@example.com", first_name="Ann", tags="b, a", organization_name="Acme")
    html = staff.get(f"/contacts/{ann.pk}/edit/").content.decode()
    assert 'value="Acme"' in html and 'value="a, b"' in html
    assert '<option value="Acme">' in html  # the company names to pick from
    response = staff.post(
        f"/contacts/{ann.pk}/edit/",
        form_data(first_name="Anne", organization_name="Beta", tags="a", is_active=None),
    )
    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.first_name, ann.organization.name if ann.organization else "") == ("Anne", "Beta")
    assert [tag.name for tag in ann.tags.all()] == ["a"]
    assert ann.is_active is False


def test_ticking_consent_on_edit_dates_it_today(staff: Client) -> None:
    ann = contact_make("ann@example.com")
    staff.post(f"/contacts/{ann.pk}/edit/", form_data(marketing_consent="on"))
    ann.refresh_from_db()
    assert ann.marketing_consent and ann.marketing_consent_at is not None
    assert timezone.localdate(ann.marketing_consent_at) == timezone.localdate()
    assert ann.marketing_consent_source == "entered by sam"


def test_the_contact_page_shows_the_fields_and_an_empty_history(staff: Client) -> None:
    ann = contact_make("ann@example.com", first_name="Ann", phone="123", notes="<b>hi</b>")
    html = staff.get(f"/contacts/{ann.pk}/").content.decode()
    assert "<h1>Ann</h1>" in html and "123" in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html  # notes are text, never HTML
    assert 'id="history-title">History</h2>' in html
    assert "No email to ann@example.com yet." in html


def test_the_history_block_renders_the_items_it_is_given() -> None:
    ann = contact_make("ann@example.com")
    history = [
        {"at": timezone.now(), "subject": "Your offer", "url": "/outbox/7/",
         "status": "sent", "status_label": "Sent", "sender": "Sam <sam@example.com>"},
        {"at": timezone.now(), "subject": "", "status": "failed", "status_label": "Failed",
         "kind": "Cc"},
    ]  # fmt: skip
    html = render_to_string("web/contacts/_history.html", {"contact": ann, "history": history})
    assert '<a href="/outbox/7/">Your offer</a>' in html
    assert '<span class="badge ok">Sent</span>' in html
    assert '<span class="badge bad">Failed</span>' in html
    assert "(no subject)" in html and "(Cc)" in html
    assert "No email to" not in html


def test_deleting_warns_what_is_kept_then_deletes(staff: Client) -> None:
    ann = contact_make("ann@example.com", first_name="Ann")
    html = staff.get(f"/contacts/{ann.pk}/delete/").content.decode()
    assert "the messages sent to this contact stay in the outbox" in html
    assert "its history is kept by address" in html
    assert Contact.objects.filter(pk=ann.pk).exists()  # a GET deletes nothing
    response = staff.post(f"/contacts/{ann.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/contacts/"
    assert not Contact.objects.exists()
    assert AuditEntry.objects.filter(action="contact.deleted", actor__username="sam").exists()


def test_a_marketer_cannot_delete_and_sees_no_delete_button() -> None:
    marketer = client_for(Role.MARKETER)
    ann = contact_make("ann@example.com")
    assert (
        f"/contacts/{ann.pk}/delete/" not in marketer.get(f"/contacts/{ann.pk}/").content.decode()
    )
    assert marketer.get(f"/contacts/{ann.pk}/delete/").status_code == 403
    assert marketer.post(f"/contacts/{ann.pk}/delete/").status_code == 403
    assert Contact.objects.exists()


def test_an_administrator_deletes_too() -> None:
    ann = contact_make("ann@example.com")
    assert client_for(Role.ADMINISTRATOR).post(f"/contacts/{ann.pk}/delete/").status_code == 302
    assert not Contact.objects.exists()


def test_a_missing_contact_is_not_found(staff: Client) -> None:
    assert staff.get("/contacts/999/").status_code == 404
    assert staff.get("/contacts/999/edit/").status_code == 404


# Companies.


def test_companies_are_listed_created_edited_and_deleted(staff: Client) -> None:
    response = staff.post(
        "/contacts/companies/new/", {"name": "Acme", "website": "acme.example", "notes": ""}
    )
    assert response.status_code == 302
    acme = Organization.objects.get()
    assert acme.website == "https://acme.example"
    contact_make("ann@example.com", organization_name="acme")
    html = staff.get("/contacts/companies/").content.decode()
    assert f'<a href="/contacts/?company={acme.pk}">1</a>' in html

    response = staff.post(
        f"/contacts/companies/{acme.pk}/edit/", {"name": "Acme Inc", "website": "", "notes": "x"}
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.name, acme.notes) == ("Acme Inc", "x")

    refused = staff.post("/contacts/companies/new/", {"name": "ACME INC", "website": ""})
    assert "already a company called" in field_errors(refused.content.decode())

    assert (
        "Its 1 contact stays, without a company."
        in staff.get(f"/contacts/companies/{acme.pk}/delete/").content.decode()
    )
    assert (
        client_for(Role.MARKETER).post(f"/contacts/companies/{acme.pk}/delete/").status_code == 403
    )
    staff.post(f"/contacts/companies/{acme.pk}/delete/")
    assert not Organization.objects.exists() and Contact.objects.count() == 1


# Export.


def exported(client: Client, query: str = "") -> list[list[str]]:
    response = client.get("/contacts/export.csv" + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    text = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_export_neutralises_spreadsheet_formulas(staff: Client) -> None:
    contact_make(
        "ann@example.com",
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="@SUM(A1)",
        phone="+49 30 1234",
        notes="-2+3",
        organization_name="=cmd|' /C calc'!A0",
    )
    header, row = exported(staff)
    values = dict(zip(header, row, strict=True))
    assert values["First name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert values["Last name"] == "'@SUM(A1)"
    assert values["Phone"] == "'+49 30 1234"
    assert values["Notes"] == "'-2+3"
    assert values["Company"] == "'=cmd|' /C calc'!A0"
    assert values["Email"] == "ann@example.com"
    assert AuditEntry.objects.get(action="contacts.exported").changes == {
        "Contacts": 1,
        "Selection": "all contacts",
    }


def test_the_export_follows_the_filter_or_the_selection(staff: Client) -> None:
    ann = contact_make("ann@example.com", tags="vip")
    bob = contact_make("bob@example.com")
    contact_make("cy@example.com")
    assert [row[0] for row in exported(staff, "?tag=vip")[1:]] == ["ann@example.com"]
    chosen = exported(staff, f"?selection=1&contact={ann.pk}&contact={bob.pk}")
    assert sorted(row[0] for row in chosen[1:]) == ["ann@example.com", "bob@example.com"]
    assert len(exported(staff)) == 4
    nothing = staff.get("/contacts/export.csv?selection=1")
    assert nothing.status_code == 302 and nothing["Location"] == "/contacts/"


# Import pages.


def upload(client: Client, content: bytes, name: str = "list.csv") -> object:
    return client.post("/contacts/import/", {"file": SimpleUploadedFile(name, content)})


def test_an_upload_leads_to_the_mapping_with_guesses_and_samples(staff: Client) -> None:
    response = upload(staff, "\ufeffE-mail;Name;Colour\nann@example.com;Ann Smith;red\n".encode())
    job = ImportJob.objects.get()
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response["Location"] == f"/contacts/import/{job.pk}/mapping/"  # type: ignore[index]
    html = staff.get(f"/contacts/import/{job.pk}/mapping/").content.decode()
    assert '<option value="email" selected>' in html
    assert '<option value="full_name" selected>' in html
    assert '<option value=";" selected>Semicolon (;)</option>' in html
    assert "Ann Smith" in html and "red" in html


def test_a_mapping_without_the_email_column_is_refused(staff: Client) -> None:
    upload(staff, b"email,name\nann@example.com,Ann\n")
    job = ImportJob.objects.get()
    response = staff.post(
        f"/contacts/import/{job.pk}/mapping/",
        {"delimiter": ",", "column_0": "", "column_1": "full_name"},
    )
    assert "Map a column to Email address" in field_errors(response.content.decode())
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED


def test_an_upload_over_the_cap_is_stopped_with_a_clear_message(
    staff: Client, settings: Settings
) -> None:
    settings.POSTROOM_IMPORT_MAX_BYTES = 1024 * 1024
    response = upload(staff, b"email\n" + b"someone@example.com\n" * 60_000)
    assert response.status_code == 200  # type: ignore[attr-defined]
    errors = field_errors(response.content.decode())  # type: ignore[attr-defined]
    assert "larger than 1 MB, the limit" in errors
    assert not ImportJob.objects.exists()
    assert not list((Path(settings.DATA_DIR) / "imports").glob("*"))


def test_a_file_that_is_not_utf8_gets_the_reason_next_to_the_field(staff: Client) -> None:
    response = upload(staff, "email,name\nann@example.com,Müller\n".encode("cp1252"))
    assert "not UTF-8" in field_errors(response.content.decode())  # type: ignore[attr-defined]


def test_someone_elses_import_is_not_found_but_an_administrator_sees_it(staff: Client) -> None:
    upload(staff, b"email\nann@example.com\n")
    job = ImportJob.objects.get()
    other = client_for(Role.STAFF, "tom")
    assert other.get(f"/contacts/import/{job.pk}/mapping/").status_code == 404
    assert other.get(f"/contacts/import/{job.pk}/progress/").status_code == 404
    assert other.post(f"/contacts/import/{job.pk}/cancel/").status_code == 404
    assert (
        client_for(Role.ADMINISTRATOR).get(f"/contacts/import/{job.pk}/mapping/").status_code == 200
    )


def test_the_progress_fragment_polls_while_running_and_refreshes_when_done(
    staff: Client,
) -> None:
    upload(staff, b"email\nann@example.com\n")
    job = ImportJob.objects.get()
    # A worker (another process) checks it and has written its progress.
    running = Job.objects.create(
        kind="contacts.import_check", state=JobState.RUNNING, phase="Checking every row",
        progress_total=400, progress_done=100,
    )  # fmt: skip
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.CHECKING, job=running)
    response = staff.get(f"/contacts/import/{job.pk}/progress/")
    html = response.content.decode()
    assert 'hx-trigger="every 500ms"' in html
    assert f'hx-get="/contacts/import/{job.pk}/progress/"' in html
    assert '<progress max="400" value="100"' in html and "100 of 400 (25%)" in html
    assert "HX-Refresh" not in response
    page = staff.get(f"/contacts/import/{job.pk}/").content.decode()
    assert 'hx-trigger="every 500ms"' in page

    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.CHECKED)
    response = staff.get(f"/contacts/import/{job.pk}/progress/")
    assert response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_import_from_upload_to_done_through_the_pages(settings: Settings) -> None:
    staff = client_for(Role.STAFF, "sam")
    contact_make("old@example.com", first_name="Old")
    text = (
        "Email,First name,Tags,Consent\n"
        "new@example.com,New,a;b,yes\n"
        "OLD@example.com,Older,,\n"
        "broken,Bad,,\n"
        "new@example.com,,c,\n"
    )
    upload(staff, text.encode())
    job = ImportJob.objects.get()
    response = staff.post(
        f"/contacts/import/{job.pk}/mapping/",
        {"delimiter": ",", "column_0": "email", "column_1": "first_name", "column_2": "tags",
         "column_3": "marketing_consent"},
    )  # fmt: skip
    assert response["Location"] == f"/contacts/import/{job.pk}/"
    job_run_here(job)  # what the worker does

    html = staff.get(f"/contacts/import/{job.pk}/").content.decode()
    assert "3. Preview: nothing is imported yet" in html
    counts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<strong>)?(\d+)", html))
    assert counts["New contacts to create"] == "1"
    assert counts["Existing contacts to update (merged by address)"] == "1"
    assert counts["Rows merged with an earlier row of the same address"] == "1"
    assert '<span class="badge bad">1</span>' in html
    assert "&#x27;broken&#x27; is not valid" in html
    assert "Import 2 contacts" in html
    assert not Contact.objects.filter(email_key="new@example.com").exists()

    report = staff.get(f"/contacts/import/{job.pk}/rejected.csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode()[1:])))  # type: ignore[attr-defined]
    assert rows[0] == ["Row", "Reason", "Email", "First name", "Tags", "Consent"]
    assert rows[1][0] == "4" and "is not valid" in rows[1][1] and rows[1][2] == "broken"

    response = staff.post(f"/contacts/import/{job.pk}/run/")
    assert response.status_code == 302
    job_run_here(job)
    html = staff.get(f"/contacts/import/{job.pk}/").content.decode()
    assert '<h2 id="counts-title">Imported</h2>' in html
    new = Contact.objects.get(email_key="new@example.com")
    assert sorted(tag.name for tag in new.tags.all()) == ["a", "b", "c"]
    assert Contact.objects.get(email_key="old@example.com").first_name == "Older"
    # A second click does not import twice.
    staff.post(f"/contacts/import/{job.pk}/run/")
    assert Contact.objects.count() == 2
    listing = staff.get("/contacts/import/").content.decode()
    assert '<span class="badge ok">Imported</span>' in listing
    assert isinstance(User.objects.get(username="sam"), User)


def test_an_import_waiting_for_the_worker_says_so_and_cancels_at_once(staff: Client) -> None:
    upload(staff, b"email\nann@example.com\n")
    job = ImportJob.objects.get()
    staff.post(f"/contacts/import/{job.pk}/mapping/", {"delimiter": ",", "column_0": "email"})
    job.refresh_from_db()
    assert job.status == ImportStatus.CHECKING and job.job is not None
    html = staff.get(f"/contacts/import/{job.pk}/progress/").content.decode()
    assert "Waiting for the worker" in html

    response = staff.post(f"/contacts/import/{job.pk}/cancel/", follow=True)
    assert "The import is cancelled. Nothing of it was imported." in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
    assert Job.objects.get(pk=job.job_id).state == JobState.CANCELLED


def test_cancelling_a_running_import_asks_the_worker_to_stop_it(staff: Client) -> None:
    upload(staff, b"email\nann@example.com\n")
    job = ImportJob.objects.get()
    staff.post(f"/contacts/import/{job.pk}/mapping/", {"delimiter": ",", "column_0": "email"})
    job.refresh_from_db()
    Job.objects.filter(pk=job.job_id).update(state=JobState.RUNNING)

    response = staff.post(f"/contacts/import/{job.pk}/cancel/", follow=True)
    assert "the worker stops it at its next step" in response.content.decode()
    assert Job.objects.get(pk=job.job_id).is_cancel_requested
    job.refresh_from_db()
    assert job.status == ImportStatus.CHECKING  # until the worker has stopped it
