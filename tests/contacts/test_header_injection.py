"""A contact's name goes into the To line of every email to them (and, through campaigns, of
many): an encoded word that decodes to a line break is refused on every way in."""

from __future__ import annotations

import pytest

from postroom.accounts.models import User
from postroom.contacts import services
from postroom.contacts.models import Contact, ImportStatus
from postroom.core.errors import ValidationError
from tests.accounts.factories import user_make
from tests.contacts.importer import import_checked

pytestmark = pytest.mark.django_db

# The finding: this first name gave `To: "x\r\nReply-To: attacker@evil.example\r\nX-J: " <…>`.
INJECTION = "=?utf-8?q?x=0D=0AReply-To:_attacker@evil.example=0D=0AX-J:_?="


@pytest.fixture
def alice() -> User:
    return user_make("alice")


@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_a_new_contact_with_it_in_a_name_is_refused(alice: User, field: str) -> None:
    with pytest.raises(ValidationError, match="encoded word") as caught:
        services.contact_create(actor=alice, email="ann@example.com", **{field: INJECTION})
    assert caught.value.field == field
    assert not Contact.objects.exists()


def test_an_edit_that_puts_it_in_a_name_is_refused_and_the_name_kept(alice: User) -> None:
    contact = services.contact_create(actor=alice, email="ann@example.com", first_name="Ann")
    with pytest.raises(ValidationError, match="encoded word") as caught:
        services.contact_update(actor=alice, contact=contact, first_name=INJECTION)
    assert caught.value.field == "first_name"
    contact.refresh_from_db()
    assert contact.first_name == "Ann"


def test_two_halves_of_an_encoded_word_cannot_be_split_over_first_and_last_name(
    alice: User,
) -> None:
    with pytest.raises(ValidationError, match="=\\?"):
        services.contact_create(
            actor=alice, email="ann@example.com", first_name="=?utf-8?q?x=0D=0A", last_name="y?="
        )


def test_a_csv_row_with_it_is_rejected_with_the_reason_and_the_others_kept(alice: User) -> None:
    text = f"Email,First name\nann@example.com,Ann\nbob@example.com,{INJECTION}\n"
    job = import_checked(alice, text)
    assert job.status == ImportStatus.CHECKED, job.error
    assert (job.total_rows, job.created_count, job.rejected_count) == (2, 1, 1)
    ((row, reason, _),) = job.report
    assert row == 3
    assert "First name" in reason and "encoded word" in reason


def test_accented_names_and_punctuation_are_still_welcome(alice: User) -> None:
    contact = services.contact_create(
        actor=alice, email="zoe@example.com", first_name="Zoë", last_name="O'Neil-Brontë (2+2=4?)"
    )
    assert contact.last_name == "O'Neil-Brontë (2+2=4?)"
