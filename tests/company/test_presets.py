"""Provider presets: every one is a setting the form would accept, with a note to read."""

from __future__ import annotations

import pytest

from postroom.company import validation
from postroom.company.presets import (
    PRESETS,
    SES_REGIONS,
    Preset,
    preset_for_settings,
    preset_get,
)
from postroom.mail.config import TlsPolicy, resolve_tls_policy


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.key)
def test_every_preset_passes_the_form_checks_and_requires_tls(preset: Preset) -> None:
    assert validation.smtp_host_clean(preset.host) == preset.host
    assert validation.smtp_port_clean(preset.port) == preset.port
    validation.tls_mode_check(tls_mode=preset.tls_mode, secure_required=preset.secure_required)
    policy = resolve_tls_policy(
        port=preset.port, secure_required=preset.secure_required, tls_mode=preset.tls_mode
    )
    assert policy.is_tls_required
    assert (policy is TlsPolicy.IMPLICIT) == (preset.port == 465)
    assert preset.note


def test_keys_are_unique() -> None:
    assert len({preset.key for preset in PRESETS}) == len(PRESETS)


@pytest.mark.parametrize(
    ("key", "host", "port"),
    [
        ("gmail", "smtp.gmail.com", 587),
        ("outlook", "smtp-mail.outlook.com", 587),
        ("microsoft365", "smtp.office365.com", 587),
        ("yahoo", "smtp.mail.yahoo.com", 465),
        ("icloud", "smtp.mail.me.com", 587),
        ("zoho", "smtp.zoho.com", 465),
        ("zoho-eu", "smtp.zoho.eu", 465),
        ("sendgrid", "smtp.sendgrid.net", 587),
        ("mailgun", "smtp.mailgun.org", 587),
        ("mailgun-eu", "smtp.eu.mailgun.org", 587),
        ("postmark", "smtp.postmarkapp.com", 587),
        ("brevo", "smtp-relay.brevo.com", 587),
        ("ses-eu-west-1", "email-smtp.eu-west-1.amazonaws.com", 587),
    ],
)
def test_the_providers_documented_server(key: str, host: str, port: int) -> None:
    preset = preset_get(key)
    assert preset is not None
    assert (preset.host, preset.port) == (host, port)


def test_amazon_ses_has_one_preset_per_region() -> None:
    for region, _label in SES_REGIONS:
        preset = preset_get(f"ses-{region}")
        assert preset is not None and preset.host == f"email-smtp.{region}.amazonaws.com"
        assert "IAM" in preset.note


def test_sendgrid_prefills_the_login_apikey() -> None:
    preset = preset_get("sendgrid")
    assert preset is not None and preset.as_form_values()["smtp_login"] == "apikey"


def test_the_requirement_notes_name_what_people_trip_over() -> None:
    def note(key: str) -> str:
        preset = preset_get(key)
        assert preset is not None
        return preset.note

    assert "app password" in note("gmail") and "OAuth" in note("gmail")
    assert "retiring Basic authentication" in note("microsoft365")
    assert "SMTP AUTH must be enabled" in note("microsoft365")
    assert "app password" in note("yahoo")
    assert "app-specific password" in note("icloud")
    assert "Server API token as both login and password" in note("postmark")


def test_a_host_typed_by_hand_is_recognised() -> None:
    preset = preset_for_settings(key="", host="SMTP.GMAIL.COM")
    assert preset is not None and preset.key == "gmail"


def test_a_saved_preset_whose_host_was_changed_no_longer_applies() -> None:
    assert preset_for_settings(key="gmail", host="relay.internal.example") is None
