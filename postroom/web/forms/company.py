"""The SMTP Server Information form: the seed page's fields, the sender, and Advanced.

Field-level checks come from postroom.company.validation, so the page shows each message next
to its field; the service runs the same checks again before it saves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.http import QueryDict

from postroom.company import validation
from postroom.company.models import AuthMethod, Company, SendAsPolicy, TlsMode
from postroom.company.presets import preset_get
from postroom.core.errors import ValidationError
from postroom.mail.advice import ALLOW_PLAINTEXT_AUTH

KEEP_HELP = "Leave blank to keep the current password."
SECURE_CHOICES = [
    ("Y", "Y — a secure (TLS) connection is required"),
    ("N", "N — use TLS when the server offers it"),
]
ADVANCED_FIELDS = (
    "smtp_tls_mode",
    "smtp_ca_certificate",
    "smtp_helo_name",
    "smtp_auth_method",
    "smtp_timeout_connect",
    "smtp_timeout_command",
    "smtp_timeout_data",
    "smtp_max_connections",
    "smtp_rate_per_second",
    "smtp_rate_per_minute",
    "smtp_rate_per_day",
)


def _checked(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a validation function and turn its error into the form's kind."""
    try:
        return check(*args, **kwargs)
    except ValidationError as error:
        raise forms.ValidationError(error.message) from None


def _password_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,  # spaces can be part of a password
        # render_value=False: a stored or typed password is never sent back to the browser.
        # new-password: stops the browser filling in the administrator's own login password.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=KEEP_HELP,
    )


def _timeout_field(label: str, which: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "max": validation.TIMEOUT_MAXIMA[which]}),
        help_text=(
            f"Seconds. Default {validation.TIMEOUT_DEFAULTS[which]} (RFC 5321 §4.5.3.2); "
            f"at most {validation.TIMEOUT_MAXIMA[which]}."
        ),
        error_messages={"invalid": "Enter a whole number of seconds."},
    )


def _rate_field(label: str, per: str, note: str = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"min": 0, "max": validation.RATE_MAXIMA[per]}),
        help_text=f"0 or blank: no limit. {note}".strip(),
        error_messages={
            "invalid": "Enter a whole number of messages.",
            "min_value": "Enter 0 (no limit) or more.",
        },
    )


class CompanySmtpForm(forms.Form):
    smtp_preset = forms.CharField(required=False, widget=forms.HiddenInput)

    smtp_host = forms.CharField(
        label="SMTP Server Address",
        max_length=validation.MAX_HOSTNAME_LENGTH + 2,  # room for an IPv6 literal's brackets
        help_text="Your mail server, such as smtp.gmail.com. Just the name: no smtp://, no port.",
        error_messages={"required": "Enter the SMTP server address, for example smtp.gmail.com."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    smtp_port = forms.IntegerField(
        label="SMTP Communication Port",
        help_text="Usually 587 (STARTTLS) or 465 (TLS from the start).",
        error_messages={
            "required": "Enter the SMTP communication port, for example 587.",
            "invalid": "Enter the port as a whole number from 1 to 65535, for example 587.",
        },
        widget=forms.NumberInput(attrs={"min": validation.MIN_PORT, "max": validation.MAX_PORT}),
    )
    smtp_secure_required = forms.TypedChoiceField(
        label="SMTP Secure Connection Required",
        choices=SECURE_CHOICES,
        coerce=lambda value: value == "Y",
        initial="Y",
        help_text="Y: TLS is mandatory (implicit TLS on port 465, STARTTLS otherwise), and "
        "Postroom never falls back to plain text.",
    )
    smtp_login = forms.CharField(
        label="SMTP Authentication Login",
        required=False,
        max_length=254,
        help_text="The user name to log in to the mail server with; often the full address.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    smtp_password = _password_field("SMTP Authentication Password")
    smtp_password_clear = forms.BooleanField(label="Clear the stored password", required=False)
    smtp_allow_plaintext_auth = forms.BooleanField(
        label=ALLOW_PLAINTEXT_AUTH,
        required=False,
        help_text="Leave this off: Postroom then logs in only over an encrypted connection, "
        "because anyone on the network between here and the server can read a password "
        "sent in plain text, and use it. Tick it only for a relay on a trusted network that "
        "offers no TLS. Mail without a login is not affected.",
    )

    epod_username = forms.CharField(
        label="ePOD API Username",
        required=False,
        max_length=254,
        help_text="The user name for the electronic signature (ePOD) integration.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    epod_password = _password_field("ePOD API Password")
    epod_password_clear = forms.BooleanField(label="Clear the stored password", required=False)

    sender_email = forms.CharField(
        label="Company email address",
        required=False,
        max_length=254,
        help_text="The address mail sent as the company comes from, e.g. info@example.com.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    sender_name = forms.CharField(
        label="Company sender name",
        required=False,
        max_length=200,
        help_text="Shown to recipients next to the address, e.g. Acme Ltd.",
    )

    smtp_tls_mode = forms.ChoiceField(
        label="TLS mode",
        choices=TlsMode.choices,
        initial=TlsMode.AUTO,
        help_text="Automatic follows the port and Secure Connection Required.",
    )
    smtp_ca_certificate = forms.CharField(
        label="Custom CA certificate (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text="Only for a relay whose certificate is signed by your own CA. Certificates "
        "are always verified; this adds a CA to the trusted ones.",
    )
    smtp_helo_name = forms.CharField(
        label="HELO name",
        required=False,
        max_length=validation.MAX_HOSTNAME_LENGTH,
        help_text="The name Postroom introduces itself with. Blank: this machine's name.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    smtp_auth_method = forms.ChoiceField(
        label="Authentication method", choices=AuthMethod.choices, initial=AuthMethod.AUTO
    )
    smtp_timeout_connect = _timeout_field("Connect timeout", "connect")
    smtp_timeout_command = _timeout_field("Command timeout", "command")
    smtp_timeout_data = _timeout_field("End of data timeout", "data")
    smtp_max_connections = forms.IntegerField(
        label="Maximum connections",
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "max": validation.MAX_CONNECTIONS}),
        help_text=f"Sessions open at once to this server. Default "
        f"{validation.DEFAULT_CONNECTIONS}; Microsoft 365 allows 3 per mailbox.",
        error_messages={"invalid": "Enter a whole number of connections."},
    )
    smtp_rate_per_second = _rate_field("Messages per second", "second")
    smtp_rate_per_minute = _rate_field(
        "Messages per minute", "minute", "Microsoft 365 allows 30 per minute per mailbox."
    )
    smtp_rate_per_day = _rate_field(
        "Messages per day", "day", "Gmail allows about 2,000 a day for Workspace accounts."
    )
    send_as_policy = forms.ChoiceField(
        label="Mail from users to contacts",
        choices=SendAsPolicy.choices,
        initial=SendAsPolicy.AUTO,
        required=False,
        help_text="Many relays only let the login send as its own address (Microsoft 365: "
        "“SendAsDenied”). Via the company, replies still reach the user through Reply-To.",
    )
    sandbox_mode = forms.BooleanField(
        label="Sandbox mode: capture all mail in the Sandbox capture; nothing leaves this machine",
        required=False,
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Django's generic "Null characters are not allowed." would hide the message that
        # says why (a login or password goes into an AUTH command); ours covers NUL too.
        for name in ("smtp_login", "smtp_password", "epod_username", "sender_name"):
            field = self.fields[name]
            field.validators = [
                v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)
            ]
        for name, is_set in (
            ("smtp_password", company.has_smtp_password),
            ("epod_password", company.has_epod_password),
        ):
            state = "set" if is_set else "not set"
            self.fields[name].help_text = f"Currently {state}. {KEEP_HELP}"

    @property
    def advanced_has_errors(self) -> bool:
        return any(name in self.errors for name in ADVANCED_FIELDS)

    def clean_smtp_preset(self) -> str:
        key = self.cleaned_data["smtp_preset"]
        return key if preset_get(key) is not None else ""

    def clean_smtp_host(self) -> str:
        return _checked(validation.smtp_host_clean, self.cleaned_data["smtp_host"])

    def clean_smtp_port(self) -> int:
        return _checked(validation.smtp_port_clean, self.cleaned_data["smtp_port"])

    def clean_smtp_login(self) -> str:
        return _checked(validation.login_clean, self.cleaned_data["smtp_login"], field="smtp_login")

    def clean_smtp_password(self) -> str:
        password = self.cleaned_data["smtp_password"]
        if password:
            _checked(validation.smtp_password_check, password)
        return password

    def clean_epod_username(self) -> str:
        return _checked(
            validation.login_clean, self.cleaned_data["epod_username"], field="epod_username"
        )

    def clean_sender_email(self) -> str:
        return _checked(validation.sender_email_clean, self.cleaned_data["sender_email"])

    def clean_sender_name(self) -> str:
        return _checked(validation.sender_name_clean, self.cleaned_data["sender_name"])

    def clean_smtp_ca_certificate(self) -> str:
        pem = self.cleaned_data["smtp_ca_certificate"]
        try:
            return validation.ca_certificate_clean(pem)
        except ValidationError as error:
            if validation.PRIVATE_KEY_MARK in pem:
                # A private key pasted by mistake is a secret: do not send it back to the browser.
                data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
                data[self.add_prefix("smtp_ca_certificate")] = ""
                self.data = data
            raise forms.ValidationError(error.message) from None

    def clean_smtp_helo_name(self) -> str:
        return _checked(validation.helo_name_clean, self.cleaned_data["smtp_helo_name"])

    def clean_smtp_timeout_connect(self) -> int:
        return _checked(
            validation.timeout_clean, self.cleaned_data["smtp_timeout_connect"], which="connect"
        )

    def clean_smtp_timeout_command(self) -> int:
        return _checked(
            validation.timeout_clean, self.cleaned_data["smtp_timeout_command"], which="command"
        )

    def clean_smtp_timeout_data(self) -> int:
        return _checked(
            validation.timeout_clean, self.cleaned_data["smtp_timeout_data"], which="data"
        )

    def clean_send_as_policy(self) -> str:
        return self.cleaned_data.get("send_as_policy") or SendAsPolicy.AUTO

    def clean_smtp_max_connections(self) -> int:
        return _checked(validation.max_connections_clean, self.cleaned_data["smtp_max_connections"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "smtp_secure_required" in data and "smtp_tls_mode" in data:
            try:
                validation.tls_mode_check(
                    tls_mode=data["smtp_tls_mode"], secure_required=data["smtp_secure_required"]
                )
            except ValidationError as error:
                self.add_error("smtp_tls_mode", error.message)
        for name in ("smtp_password", "epod_password"):
            if data.get(name) and data.get(f"{name}_clear"):
                self.add_error(
                    f"{name}_clear",
                    "Either enter a new password or tick “Clear the stored password”, not both.",
                )
        return data


def company_smtp_initial(company: Company) -> dict[str, Any]:
    """The form's starting values: what is stored, passwords excepted (they never leave)."""
    return {
        "smtp_preset": company.smtp_preset,
        "smtp_host": company.smtp_host,
        "smtp_port": company.smtp_port,
        "smtp_secure_required": "Y" if company.smtp_secure_required else "N",
        "smtp_allow_plaintext_auth": company.smtp_allow_plaintext_auth,
        "smtp_login": company.smtp_login,
        "epod_username": company.epod_username,
        "sender_email": company.sender_email,
        "sender_name": company.sender_name,
        "smtp_tls_mode": company.smtp_tls_mode,
        "smtp_ca_certificate": company.smtp_ca_certificate,
        "smtp_helo_name": company.smtp_helo_name,
        "smtp_auth_method": company.smtp_auth_method,
        "smtp_timeout_connect": company.smtp_timeout_connect,
        "smtp_timeout_command": company.smtp_timeout_command,
        "smtp_timeout_data": company.smtp_timeout_data,
        "smtp_max_connections": company.smtp_max_connections,
        "smtp_rate_per_second": company.smtp_rate_per_second,
        "smtp_rate_per_minute": company.smtp_rate_per_minute,
        "smtp_rate_per_day": company.smtp_rate_per_day,
        "sandbox_mode": company.sandbox_mode,
        "send_as_policy": company.send_as_policy,
    }
