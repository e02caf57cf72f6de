"""Audiences → Suppression: the list with reason and date, search, add, remove, import (with
the upload cap) and export, audited."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from postroom.accounts.models import Role
from postroom.audit.models import AuditEntry
from postroom.outbox.models import Suppression, SuppressionReason
from postroom.outbox.suppression import suppression_add
from tests.accounts.factories import user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def mia() -> Client:
    client = Client()
    client.force_login(user_make("mia", role=Role.MARKETER))
    return client


def test_an_address_is_added_shown_with_its_reason_and_removed(mia: Client) -> None:
    response = mia.post(
        "/audiences/suppression/",
        {"address": "Ann@Example.com", "reason": "complained", "note": "spam button"},
        follow=True,
    )
    page = response.content.decode()
    assert "Ann@example.com is suppressed." in page
    assert "Complained (reported as spam)" in page and "spam button" in page
    assert "added by mia" in page
    again = mia.post(
        "/audiences/suppression/", {"address": "ann@example.com", "reason": "manual"}, follow=True
    )
    assert "was already suppressed, since" in again.content.decode()
    entry = Suppression.objects.get()
    assert (
        "Take Ann@example.com off"
        in mia.get(f"/audiences/suppression/{entry.pk}/remove/").content.decode()
    )
    mia.post(f"/audiences/suppression/{entry.pk}/remove/")
    assert not Suppression.objects.exists()
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"suppression.added", "suppression.removed"} <= actions


def test_a_bad_address_is_refused_next_to_the_field(mia: Client) -> None:
    response = mia.post(
        "/audiences/suppression/", {"address": "not an address", "reason": "manual"}
    )
    assert response.status_code == 200
    assert "is not valid" in response.content.decode()


def test_search_and_reason_filter_and_keyset_pages(mia: Client) -> None:
    for n in range(55):
        suppression_add(actor=None, address=f"m{n:02}@example.com")
    suppression_add(
        actor=None, address="gone@bounce.example", reason=SuppressionReason.HARD_BOUNCED
    )
    first = mia.get("/audiences/suppression/").content.decode()
    assert "gone@bounce.example" in first and "m00@example.com" not in first
    assert "Older" in first
    older = mia.get("/audiences/suppression/", {"before": _last_id(first)}).content.decode()
    assert "m00@example.com" in older and "gone@bounce.example" not in older
    found = mia.get("/audiences/suppression/", {"q": "BOUNCE"}).content.decode()
    assert "gone@bounce.example" in found and "m01@example.com" not in found
    bounced = mia.get("/audiences/suppression/", {"reason": "hard_bounced"}).content.decode()
    assert "gone@bounce.example" in bounced and "m01@example.com" not in bounced


def _last_id(page: str) -> str:
    return page.rsplit("/audiences/suppression/", 1)[1].split("/remove/")[0]


def test_an_import_adds_good_rows_and_lists_the_rejected_ones(mia: Client) -> None:
    suppression_add(actor=None, address="old@example.com")
    content = (
        "\ufeffEmail;Reason;Note\n"
        "new@example.com;;\n"
        "OLD@example.com;unsubscribed;\n"
        "gone@example.com;hard_bounced;from the old tool\n"
        "not-an-address;;\n"
        "x@example.com;angry;\n"
        ";;\n"
    ).encode()
    upload = SimpleUploadedFile("old-tool.csv", content)
    response = mia.post(
        "/audiences/suppression/import/",
        {"file": upload, "reason": "unsubscribed", "note": "old tool"},
    )
    page = response.content.decode()
    assert "2 addresses added; 1 already suppressed; 2 rows rejected." in page
    assert "not-an-address" in page and "Choose a reason" in page
    reasons = dict(Suppression.objects.values_list("address", "reason"))
    assert reasons == {
        "old@example.com": "manual",
        "new@example.com": "unsubscribed",
        "gone@example.com": "hard_bounced",
    }
    assert Suppression.objects.get(address="new@example.com").note == "old tool"
    assert Suppression.objects.get(address="gone@example.com").source.startswith(
        "CSV import of old-tool.csv by mia"
    )


def test_a_plain_list_of_addresses_imports_from_its_first_row(mia: Client) -> None:
    upload = SimpleUploadedFile("plain.csv", b"a@example.com\nb@example.com\n")
    response = mia.post(
        "/audiences/suppression/import/", {"file": upload, "reason": "manual"}, follow=True
    )
    assert "2 addresses added" in response.content.decode()


def test_an_oversized_import_is_stopped_by_the_upload_cap(mia: Client, settings: object) -> None:
    settings.POSTROOM_IMPORT_MAX_BYTES = 50  # type: ignore[attr-defined]
    upload = SimpleUploadedFile("big.csv", b"a@example.com\n" * 20)
    response = mia.post("/audiences/suppression/import/", {"file": upload, "reason": "manual"})
    assert "larger than" in response.content.decode()
    assert not Suppression.objects.exists()


def test_the_export_reads_back_as_an_import(mia: Client) -> None:
    suppression_add(actor=None, address="=cmd@example.com", note="+danger")
    suppression_add(actor=None, address="b@example.com", reason=SuppressionReason.COMPLAINED)
    response = mia.get("/audiences/suppression/export.csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Address", "Reason", "Note", "Source", "Added at"]
    assert rows[2][:3] == ["'=cmd@example.com", "manual", "'+danger"]  # no formula runs
    assert AuditEntry.objects.filter(action="suppression.exported", changes__Addresses=2).exists()
    Suppression.objects.all().delete()
    upload = SimpleUploadedFile("export.csv", text.encode())
    mia.post("/audiences/suppression/import/", {"file": upload, "reason": "manual"})
    assert dict(Suppression.objects.values_list("address", "reason")) == {
        "=cmd@example.com": "manual",
        "b@example.com": "complained",
    }
    assert Suppression.objects.get(address="=cmd@example.com").note == "+danger"
