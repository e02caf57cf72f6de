"""Saving SMTP Server Information: encryption of secrets, the audit trail, the key check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.audit.selectors import audit_change_lines
from postroom.audit.services import audit_record
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.company.services import (
    SMTP_UPDATED,
    SmtpSettingsInput,
    company_smtp_update,
    company_verify_secrets,
)
from postroom.core.errors import SecretKeyError, ValidationError
from postroom.core.secrets import secret_decrypt

pytestmark = pytest.mark.django_db

SMTP_PASSWORD = "Smtp-Plaintext-7c1e9a"
EPOD_PASSWORD = "Epod-Plaintext-42b8d0"


@pytest.fixture
def admin() -> User:
    # No password: hashing one costs a second per test and these tests never log in.
    return User.objects.create(username="ada", role=Role.ADMINISTRATOR)


def update(actor: User | None, **overrides: Any) -> Company:
    values: dict[str, Any] = {
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "smtp_login": "mailer@example.com",
        "smtp_secure_required": True,
        "sender_email": "info@example.com",
        "sender_name": "Acme Ltd",
    }
    values.update(overrides)
    return company_smtp_update(actor=actor, values=SmtpSettingsInput(**values))


def stored_tokens() -> tuple[str, str]:
    company = Company.objects.get()
    return company.smtp_password_encrypted, company.epod_password_encrypted


# Secrets


def test_a_new_password_is_stored_as_a_fernet_token(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    smtp_token, epod_token = stored_tokens()
    assert SMTP_PASSWORD not in smtp_token and EPOD_PASSWORD not in epod_token
    # A Fernet token is url-safe base64 whose first byte is the version 0x80 ("gAAAAA").
    assert smtp_token.startswith("gAAAAA") and epod_token.startswith("gAAAAA")
    assert secret_decrypt(smtp_token) == SMTP_PASSWORD
    assert secret_decrypt(epod_token) == EPOD_PASSWORD


def test_a_blank_password_keeps_the_stored_one(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    before = stored_tokens()
    update(admin, smtp_host="smtp2.example.com")
    assert stored_tokens() == before


def test_clear_removes_only_the_password_it_belongs_to(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    update(admin, smtp_password_clear=True)
    smtp_token, epod_token = stored_tokens()
    assert smtp_token == ""
    assert secret_decrypt(epod_token) == EPOD_PASSWORD


def test_a_new_password_and_clear_together_are_refused(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD)
    with pytest.raises(ValidationError, match="not both") as raised:
        update(admin, smtp_password="Other-Secret-1", smtp_password_clear=True)
    assert raised.value.field == "smtp_password_clear"
    assert secret_decrypt(stored_tokens()[0]) == SMTP_PASSWORD


def test_no_repr_or_string_of_the_company_holds_a_password(admin: User) -> None:
    company = update(admin, smtp_password=SMTP_PASSWORD)
    assert SMTP_PASSWORD not in repr(company) + str(company) + repr(company.__dict__)


# Validation in the service (the API and commands call it too)


def test_the_service_refuses_secure_y_with_tls_none_and_saves_nothing(admin: User) -> None:
    update(admin)
    with pytest.raises(ValidationError) as raised:
        update(admin, smtp_host="other.example.com", smtp_tls_mode="none")
    assert raised.value.field == "smtp_tls_mode"
    assert company_get().smtp_host == "smtp.example.com"


def test_the_service_normalizes_what_it_stores(admin: User) -> None:
    company = update(admin, smtp_host=" SMTP.Bücher.Example ", sender_email="Info@EXAMPLE.com")
    assert company.smtp_host == "smtp.xn--bcher-kva.example"
    assert company.sender_email == "info@example.com"


# Audit


def test_a_change_is_recorded_with_labels_and_old_and_new_values(admin: User) -> None:
    update(admin)
    update(admin, smtp_port=465, smtp_secure_required=False)
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry is not None
    assert entry.action == SMTP_UPDATED
    assert entry.actor == admin and entry.actor_name == "ada"
    assert entry.changes == {
        "SMTP Communication Port": {"from": 587, "to": 465},
        "SMTP Secure Connection Required": {"from": "Y", "to": "N"},
    }


def test_secrets_are_recorded_as_set_replaced_and_cleared_never_their_value(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD)
    update(admin, smtp_password="Second-Secret-99aa")
    update(admin, smtp_password_clear=True)
    entries = list(AuditEntry.objects.order_by("id"))
    label = "SMTP Authentication Password"
    assert [entry.changes[label]["secret"] for entry in entries] == ["set", "replaced", "cleared"]
    everything = json.dumps([entry.changes for entry in entries]) + "".join(
        str(entry) for entry in entries
    )
    assert SMTP_PASSWORD not in everything and "Second-Secret-99aa" not in everything
    assert "gAAAAA" not in everything  # not even the token


def test_choices_are_recorded_by_their_label(admin: User) -> None:
    update(admin)
    update(
        admin,
        smtp_tls_mode="implicit",
        smtp_port=465,
        smtp_preset="yahoo",
        smtp_host="smtp.mail.yahoo.com",
    )
    changes = AuditEntry.objects.order_by("-id").first().changes  # type: ignore[union-attr]
    assert changes["TLS mode"] == {
        "from": "Automatic (from port and Secure Connection Required)",
        "to": "Implicit TLS (SMTPS)",
    }
    assert changes["Provider preset"] == {"from": "", "to": "Yahoo Mail"}


def test_saving_without_a_change_records_nothing(admin: User) -> None:
    update(admin, smtp_password=SMTP_PASSWORD)
    update(admin)
    assert AuditEntry.objects.count() == 1


def test_a_custom_ca_is_recorded_by_subject_not_as_a_page_of_base64(
    admin: User, test_ca: Any
) -> None:
    update(admin, smtp_ca_certificate=test_ca.pem)
    change = AuditEntry.objects.get().changes["Custom CA certificate"]
    assert "CN=Postroom Test CA" in change["to"]
    assert "BEGIN CERTIFICATE" not in change["to"]


def test_an_entry_without_a_user_is_by_the_system() -> None:
    entry = audit_record(actor=None, action="test.done", subject="x", changes={"a": 1})
    assert entry.actor is None and entry.actor_name == "system"


def test_change_lines_read_as_sentences() -> None:
    lines = audit_change_lines(
        {
            "SMTP Communication Port": {"from": None, "to": 587},
            "SMTP Authentication Password": {"changed": True, "secret": "set"},
            "role": "staff",
        }
    )
    assert [(line.label, line.text) for line in lines] == [
        ("SMTP Communication Port", "(empty) → 587"),
        ("SMTP Authentication Password", "set (the value is never recorded)"),
        ("role", "staff"),
    ]


# The start-up check of the secret key


def test_secrets_verify_with_the_key_that_encrypted_them(admin: User) -> None:
    with override_settings(SECRET_KEY="first-master-key-0123456789abcdef", SECRET_KEY_FALLBACKS=[]):
        update(admin, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
        company_verify_secrets()


def test_a_different_key_is_refused_with_an_actionable_message(admin: User) -> None:
    with override_settings(SECRET_KEY="first-master-key-0123456789abcdef", SECRET_KEY_FALLBACKS=[]):
        update(admin, smtp_password=SMTP_PASSWORD)
    with (
        override_settings(SECRET_KEY="second-master-key-fedcba9876543210", SECRET_KEY_FALLBACKS=[]),
        pytest.raises(SecretKeyError) as raised,
    ):
        company_verify_secrets()
    message = raised.value.message
    assert "SMTP Authentication Password" in message
    assert "POSTROOM_SECRET_KEY" in message and "POSTROOM_SECRET_KEY_FALLBACKS" in message
    assert SMTP_PASSWORD not in message
    assert raised.value.code == "secret_key"


def test_the_old_key_among_the_fallbacks_lets_the_start_go_on(admin: User) -> None:
    with override_settings(SECRET_KEY="first-master-key-0123456789abcdef", SECRET_KEY_FALLBACKS=[]):
        update(admin, epod_password=EPOD_PASSWORD)
    with override_settings(
        SECRET_KEY="second-master-key-fedcba9876543210",
        SECRET_KEY_FALLBACKS=["first-master-key-0123456789abcdef"],
    ):
        company_verify_secrets()
        assert secret_decrypt(stored_tokens()[1]) == EPOD_PASSWORD


def test_a_token_that_is_not_fernet_at_all_is_refused(admin: User) -> None:
    update(admin)
    # A token made with a random Fernet key: the same shape, but no key of ours opens it.
    Company.objects.update(epod_password_encrypted=Fernet(Fernet.generate_key()).encrypt(b"x"))
    with pytest.raises(SecretKeyError, match="ePOD API Password"):
        company_verify_secrets()


def test_an_install_without_secrets_verifies() -> None:
    company_get()
    company_verify_secrets()
