"""What an administrator may type into SMTP Server Information: pure checks, no database."""

from __future__ import annotations

import pytest

from postroom.company import validation
from postroom.core.errors import ValidationError
from tests.support.certs import CertAuthority

# Host names


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("smtp.gmail.com", "smtp.gmail.com"),
        ("SMTP.GMAIL.COM", "smtp.gmail.com"),  # the seed page's own example
        ("  smtp.example.com  ", "smtp.example.com"),
        ("smtp.example.com.", "smtp.example.com"),
        ("smtp.bücher.example", "smtp.xn--bcher-kva.example"),
        ("mail.例え.jp", "mail.xn--r8jz45g.jp"),
        ("localhost", "localhost"),
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
    ],
)
def test_a_valid_host_is_stored_normalized(typed: str, stored: str) -> None:
    assert validation.smtp_host_clean(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the SMTP server address"),
        ("smtp://smtp.gmail.com", "without “smtp://”"),
        ("smtps:smtp.gmail.com", "without “smtp://”"),
        ("smtp.gm ail.com", "cannot contain spaces"),
        ("smtp.gmail.com/relay", "without a path"),
        ("smtp.gmail.com:587", "Enter the port in SMTP Communication Port"),
        ("alice@gmail.com", "looks like an email address"),
        ("smtp_relay.example.com", "not a valid host name"),
        ("-smtp.example.com", "not a valid host name"),
        ("smtp..example.com", "empty part"),
        ("a" * 64 + ".example.com", "longer than 63 characters"),
        ("a." * 127 + "com", "longer than 253 characters"),
        ("256.1.1.1", "not a valid IPv4 address"),
        ("smtp.exa\x00mple.com", "control characters"),
    ],
)
def test_an_invalid_host_is_refused_with_a_reason(typed: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        validation.smtp_host_clean(typed)
    assert raised.value.field == "smtp_host"


# Port


@pytest.mark.parametrize("port", [1, 25, 465, 587, 2525, 65535])
def test_ports_from_1_to_65535_are_accepted(port: int) -> None:
    assert validation.smtp_port_clean(port) == port


@pytest.mark.parametrize("port", [0, -1, 65536, 100000])
def test_ports_outside_1_to_65535_are_refused(port: int) -> None:
    with pytest.raises(ValidationError, match="from 1 to 65535"):
        validation.smtp_port_clean(port)


def test_a_missing_port_is_refused() -> None:
    with pytest.raises(ValidationError, match="Enter the SMTP communication port"):
        validation.smtp_port_clean(None)


# Logins, sender, HELO


@pytest.mark.parametrize("login", ["bob\r\nMAIL FROM:<x@evil>", "bob\x00", "bob\tx", "bob\x7f"])
def test_a_login_with_control_characters_is_refused(login: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        validation.login_clean(login, field="smtp_login")


def test_a_login_keeps_unicode_and_loses_surrounding_spaces() -> None:
    assert validation.login_clean("  jürgen@example.com ", field="smtp_login") == (
        "jürgen@example.com"
    )


def test_an_smtp_password_with_nul_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValidationError) as raised:
        validation.smtp_password_check("pass\x00word-8342")
    assert "8342" not in raised.value.message
    assert raised.value.field == "smtp_password"


def test_the_sender_address_is_stored_in_normalized_form() -> None:
    # email-validator lowercases the domain, and role names such as info@ and postmaster@.
    assert validation.sender_email_clean(" Info@EXAMPLE.com ") == "info@example.com"


@pytest.mark.parametrize("address", ["info", "info@", "in fo@example.com", "info@@example.com"])
def test_an_invalid_sender_address_is_refused(address: str) -> None:
    with pytest.raises(ValidationError, match="not a valid email address") as raised:
        validation.sender_email_clean(address)
    assert raised.value.field == "sender_email"


@pytest.mark.parametrize("name", ["Acme\r\nBcc: victim@example.com", "Acme\nLtd", "Acme\rLtd"])
def test_a_sender_name_with_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="line break") as raised:
        validation.sender_name_clean(name)
    assert raised.value.field == "sender_name"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("", ""),
        ("Relay-Client.Example.com", "relay-client.example.com"),
        ("192.0.2.1", "[192.0.2.1]"),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("2001:db8::5", "[IPv6:2001:db8::5]"),
    ],
)
def test_a_helo_name_is_a_host_name_or_an_address_literal(typed: str, stored: str) -> None:
    assert validation.helo_name_clean(typed) == stored


@pytest.mark.parametrize("typed", ["my host", "bad_name.example", "-x.example"])
def test_an_invalid_helo_name_is_refused(typed: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validation.helo_name_clean(typed)
    assert raised.value.field == "smtp_helo_name"


# Timeouts


def test_a_blank_timeout_takes_the_rfc_5321_default() -> None:
    assert [validation.timeout_clean(None, which=w) for w in ("connect", "command", "data")] == [
        30,
        300,
        600,
    ]


@pytest.mark.parametrize(
    ("which", "value"), [("connect", 0), ("connect", 301), ("command", 3601), ("data", -5)]
)
def test_a_timeout_outside_its_bounds_is_refused(which: str, value: int) -> None:
    with pytest.raises(ValidationError, match="from 1 to") as raised:
        validation.timeout_clean(value, which=which)
    assert raised.value.field == f"smtp_timeout_{which}"


# Custom CA


def test_a_pem_ca_certificate_is_accepted_and_described(test_ca: CertAuthority) -> None:
    stored = validation.ca_certificate_clean(test_ca.pem)
    assert stored.startswith("-----BEGIN CERTIFICATE-----")
    assert "CN=Postroom Test CA" in validation.ca_certificate_describe(stored)


def test_text_that_is_not_a_pem_certificate_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a PEM certificate"):
        validation.ca_certificate_clean("MIIB this is not a certificate")


def test_a_broken_pem_block_is_refused() -> None:
    broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    with pytest.raises(ValidationError, match="not a PEM certificate"):
        validation.ca_certificate_clean(broken)


def test_a_pasted_private_key_is_refused(test_ca: CertAuthority) -> None:
    issued = test_ca.issue(stem="with-key")
    with pytest.raises(ValidationError, match="contains a private key"):
        validation.ca_certificate_clean(test_ca.pem + issued.key_path.read_text())


def test_an_expired_certificate_is_refused(test_ca: CertAuthority) -> None:
    expired = test_ca.issue(stem="expired", expired=True)
    with pytest.raises(ValidationError, match="expired on"):
        validation.ca_certificate_clean(expired.cert_path.read_text())


# TLS mode against Secure Connection Required


def test_secure_y_with_tls_mode_none_is_a_contradiction() -> None:
    with pytest.raises(ValidationError, match="cannot be “None”") as raised:
        validation.tls_mode_check(tls_mode="none", secure_required=True)
    assert raised.value.field == "smtp_tls_mode"


def test_secure_n_allows_tls_mode_none() -> None:
    validation.tls_mode_check(tls_mode="none", secure_required=False)


# Warnings shown on the page


def _warnings(**overrides: object) -> list[str]:
    values: dict = {
        "port": 587,
        "secure_required": True,
        "tls_mode": "auto",
        "has_password": True,
        "sender_email": "info@example.com",
    }
    values.update(overrides)
    return validation.smtp_settings_warnings(**values)


def test_secure_y_on_587_gives_no_warning() -> None:
    assert _warnings() == []


def test_secure_n_warns_that_mail_may_travel_unencrypted_but_the_password_never() -> None:
    (warning,) = _warnings(secure_required=False)
    assert "mail travels unencrypted" in warning
    assert "The SMTP password is never sent that way" in warning
    assert "Allow my password over an unencrypted connection" in warning


def test_secure_n_with_the_password_allowed_in_clear_says_it_travels_too() -> None:
    (warning,) = _warnings(secure_required=False, allow_plaintext_auth=True)
    assert "and so does the SMTP password" in warning


def test_tls_mode_none_without_a_password_only_warns_about_the_mail() -> None:
    (warning,) = _warnings(secure_required=False, tls_mode="none", has_password=False)
    assert warning == (
        "TLS mode is None: mail travels unencrypted over the network. Choose TLS mode "
        "Automatic unless the server is on a trusted network."
    )


def test_starttls_on_port_465_is_flagged() -> None:
    (warning,) = _warnings(port=465, tls_mode="starttls")
    assert "Port 465 normally expects implicit TLS" in warning


def test_a_missing_sender_address_is_flagged() -> None:
    (warning,) = _warnings(sender_email="")
    assert "No company email address" in warning
