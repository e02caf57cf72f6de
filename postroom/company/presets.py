"""Known SMTP providers: where to connect, how, and what each one needs before it accepts mail.

A preset only prefills the form (host, port, Secure Connection Required, TLS mode and, for
SendGrid, the login); the administrator still reviews and saves. The notes are what people
most often trip over with each provider, checked against the providers' own help pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.company.models import TlsMode

SUBMISSION_PORT = 587  # RFC 6409 §3.1: message submission, upgraded with STARTTLS
SUBMISSIONS_PORT = 465  # RFC 8314 §7.3: message submission over implicit TLS


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    group: str
    host: str
    port: int
    tls_mode: str
    note: str
    login: str = ""  # prefilled only when the provider fixes it (SendGrid's "apikey")
    secure_required: bool = True  # every provider below refuses plain-text AUTH anyway

    def as_form_values(self) -> dict[str, object]:
        values: dict[str, object] = {
            "smtp_preset": self.key,
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_secure_required": "Y" if self.secure_required else "N",
            "smtp_tls_mode": self.tls_mode,
        }
        if self.login:
            values["smtp_login"] = self.login
        return values


_STARTTLS = TlsMode.STARTTLS.value
_IMPLICIT = TlsMode.IMPLICIT.value

_SES_NOTE = (
    "Use SMTP credentials created in the Amazon SES console (SMTP settings → Create SMTP "
    "credentials): they are not your IAM access key and secret. The sender address or its "
    "domain must be a verified identity in this region, and a new account is in the sandbox "
    "(it may only send to verified addresses) until you request production access."
)

# The regions where SES offers an SMTP endpoint that customers use most; the host name
# pattern is the same everywhere (docs.aws.amazon.com/ses/latest/dg/smtp-connect.html).
SES_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("ca-central-1", "Canada (Central)"),
    ("sa-east-1", "South America (São Paulo)"),
    ("eu-west-1", "Europe (Ireland)"),
    ("eu-west-2", "Europe (London)"),
    ("eu-west-3", "Europe (Paris)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("eu-north-1", "Europe (Stockholm)"),
    ("eu-south-1", "Europe (Milan)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
)

_ZOHO_NOTE = (
    "Use the host of the data centre your account lives in (zoho.com, zoho.eu, zoho.in). "
    "With two-factor authentication on, create an application-specific password. Accounts "
    "on your own domain use smtppro.zoho.com (or .eu/.in) instead of smtp.zoho.com."
)
_MAILGUN_NOTE = (
    "Log in with the domain's SMTP credentials (for example postmaster@mg.example.com) and "
    "the SMTP password from Domain settings → SMTP credentials, not your account password. "
    "Use the host of your account's region."
)

PRESETS: tuple[Preset, ...] = (
    Preset(
        key="gmail",
        name="Gmail / Google Workspace",
        group="Mailbox providers",
        host="smtp.gmail.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "Google no longer accepts the account password from apps: turn on 2-Step "
            "Verification and create an app password (Google Account → Security → App "
            "passwords), or use OAuth. The login is the full Gmail address, and mail can only "
            "be sent as that address or its verified aliases."
        ),
    ),
    Preset(
        key="outlook",
        name="Outlook.com (personal)",
        group="Mailbox providers",
        host="smtp-mail.outlook.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "The login is the full Outlook.com address; with two-step verification on you "
            "need an app password. Microsoft is moving personal accounts to modern "
            "authentication (OAuth) for mail apps, so password login may stop working."
        ),
    ),
    Preset(
        key="microsoft365",
        name="Microsoft 365 (Exchange Online)",
        group="Mailbox providers",
        host="smtp.office365.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "SMTP AUTH must be enabled for the sending mailbox (Microsoft 365 admin centre → "
            "user → Mail → Manage email apps → Authenticated SMTP); otherwise the server answers "
            "5.7.139. Microsoft is retiring Basic authentication (password login) for SMTP AUTH: "
            "plan to move to OAuth. Mail can only be sent as that mailbox or one it may send as."
        ),
    ),
    Preset(
        key="yahoo",
        name="Yahoo Mail",
        group="Mailbox providers",
        host="smtp.mail.yahoo.com",
        port=SUBMISSIONS_PORT,
        tls_mode=_IMPLICIT,
        note=(
            "Yahoo needs an app password (Account security → Generate app password); the "
            "account password is refused. The login is the full Yahoo address."
        ),
    ),
    Preset(
        key="icloud",
        name="iCloud Mail",
        group="Mailbox providers",
        host="smtp.mail.me.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "Create an app-specific password at account.apple.com (two-factor authentication "
            "must be on). The login is the iCloud Mail address, and mail must be sent from it "
            "or one of its aliases."
        ),
    ),
    Preset(
        key="zoho",
        name="Zoho Mail (zoho.com)",
        group="Mailbox providers",
        host="smtp.zoho.com",
        port=SUBMISSIONS_PORT,
        tls_mode=_IMPLICIT,
        note=_ZOHO_NOTE,
    ),
    Preset(
        key="zoho-eu",
        name="Zoho Mail (zoho.eu)",
        group="Mailbox providers",
        host="smtp.zoho.eu",
        port=SUBMISSIONS_PORT,
        tls_mode=_IMPLICIT,
        note=_ZOHO_NOTE,
    ),
    Preset(
        key="zoho-in",
        name="Zoho Mail (zoho.in)",
        group="Mailbox providers",
        host="smtp.zoho.in",
        port=SUBMISSIONS_PORT,
        tls_mode=_IMPLICIT,
        note=_ZOHO_NOTE,
    ),
    Preset(
        key="sendgrid",
        name="SendGrid",
        group="Sending services",
        host="smtp.sendgrid.net",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        login="apikey",
        note=(
            'The login is literally "apikey" and the password is a SendGrid API key with '
            "Mail Send permission. The sender address or domain must be verified (Sender "
            "Authentication)."
        ),
    ),
    Preset(
        key="mailgun",
        name="Mailgun (US)",
        group="Sending services",
        host="smtp.mailgun.org",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=_MAILGUN_NOTE,
    ),
    Preset(
        key="mailgun-eu",
        name="Mailgun (EU)",
        group="Sending services",
        host="smtp.eu.mailgun.org",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=_MAILGUN_NOTE,
    ),
    Preset(
        key="postmark",
        name="Postmark",
        group="Sending services",
        host="smtp.postmarkapp.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "Use the Server API token as both login and password. The sender address must be "
            "a confirmed Sender Signature or on a verified domain."
        ),
    ),
    Preset(
        key="brevo",
        name="Brevo (Sendinblue)",
        group="Sending services",
        host="smtp-relay.brevo.com",
        port=SUBMISSION_PORT,
        tls_mode=_STARTTLS,
        note=(
            "The login is the SMTP login shown under SMTP & API (not necessarily your account "
            "email) and the password is an SMTP key, not your account password. The sender "
            "must be a verified sender or domain."
        ),
    ),
    *(
        Preset(
            key=f"ses-{region}",
            name=f"Amazon SES — {label} ({region})",
            group="Amazon SES",
            host=f"email-smtp.{region}.amazonaws.com",
            port=SUBMISSION_PORT,
            tls_mode=_STARTTLS,
            note=_SES_NOTE,
        )
        for region, label in SES_REGIONS
    ),
)

_BY_KEY = {preset.key: preset for preset in PRESETS}


def preset_get(key: str) -> Preset | None:
    return _BY_KEY.get(key)


def preset_for_settings(*, key: str, host: str) -> Preset | None:
    """Return the provider these settings point at: the saved preset if its host still
    matches, else any preset with that host (so typing smtp.gmail.com by hand shows Gmail's
    note too). None for a custom server."""
    host = host.lower().rstrip(".")
    preset = _BY_KEY.get(key)
    if preset is not None and preset.host == host:
        return preset
    return next((candidate for candidate in PRESETS if candidate.host == host), None)


def preset_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(key, name), ...]) for a <select> with <optgroup>s, in PRESETS order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for preset in PRESETS:
        groups.setdefault(preset.group, []).append((preset.key, preset.name))
    return list(groups.items())
