"""The plain words for each rule of the reply table (postroom.mail.classify.REPLY_RULES).

One function per diagnosis: what the server's refusal means and what to change, naming the
settings as the Company page names them. Which function speaks for which reply is the table's
business, not decided here. Pure: no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.mail.advice import (
    ENCRYPT_ADVICE,
    SUBMISSION_PORT,
    Diagnosis,
    app_password_advice,
    diagnose_smtputf8_missing,
    is_microsoft,
)
from postroom.mail.check_report import reply_text
from postroom.mail.config import IMPLICIT_TLS_PORT
from postroom.mail.replies import Reply, ReplyClass, Stage, Status

_BASIC_AUTH_OFF_ADVICE = (
    'Microsoft 365 has password login for SMTP ("Authenticated SMTP") turned off for this '
    "mailbox or the whole organisation. An administrator can turn it on in the Microsoft 365 "
    "admin center (Users → Active users → the mailbox → Mail → Manage email apps → "
    "Authenticated SMTP) and must make sure Security Defaults do not block it. Microsoft is "
    "retiring password login for SMTP, so switching to OAuth (XOAUTH2) is the lasting fix."
)


@dataclass(frozen=True)
class Said:
    """A refusal and what the advice may name besides it."""

    stage: Stage
    reply: Reply
    host: str = ""  # the SMTP Server Address: provider-specific advice
    login: str = ""
    address: str = ""  # the sender (MAIL) or recipient (RCPT) concerned
    is_oauth: bool = False  # logged in with an OAuth token (XOAUTH2), not a password

    @property
    def said(self) -> str:
        """The reply as a page shows it: "535 5.7.8 ...", one line, an excerpt."""
        reply = self.reply
        return reply_text(reply.code, f"{reply.enhanced} {reply.text}".strip())


def starttls_refused(r: Said) -> Diagnosis:
    temporary = "temporarily " if r.reply.reply_class is ReplyClass.TRANSIENT_NEGATIVE else ""
    return Diagnosis(
        "starttls_refused",
        f"The server offers STARTTLS but {temporary}refused to start it ({r.said}). Postroom "
        "does not continue in plain text.",
        "The server's TLS setup is broken (for example a missing certificate) or it is "
        "overloaded. Try again later; if it repeats, ask the server's administrator, or use "
        f"port {IMPLICIT_TLS_PORT} with implicit TLS if the server offers it.",
    )


# With OAuth, Microsoft's AUTH refusals are about the mailbox or the app's rights.
_M365_OAUTH_ADVICE: dict[str, str] = {
    Status.M365_BASIC_AUTH_DISABLED: (
        "SMTP AUTH is turned off for this mailbox or the whole organisation, and OAuth needs it "
        "too. In the Microsoft 365 admin center: Users → Active users → the mailbox → Mail → "
        "Manage email apps → tick Authenticated SMTP; for the organisation, in Exchange Online "
        "PowerShell: Set-TransportConfig -SmtpClientAuthenticationDisabled $false."
    ),
    Status.M365_AUTH_UNSUCCESSFUL: (
        "The token was refused for this mailbox. Signed in as someone: the SMTP "
        "Authentication Login must be the mailbox that signed in, and the app registration "
        "needs the delegated permission SMTP.Send (Microsoft Entra admin center → App "
        "registrations → the app → API permissions → Office 365 Exchange Online or "
        "Microsoft Graph → SMTP.Send, with admin consent). App-only: register the app's "
        "service principal in Exchange (New-ServicePrincipal) and give it the mailbox "
        "(Add-MailboxPermission -User <service principal id> -AccessRights FullAccess)."
    ),
}


def basic_auth_disabled(r: Said) -> Diagnosis:
    if r.is_oauth:
        return Diagnosis(
            "smtp_auth_disabled"
            if r.reply.enhanced == Status.M365_BASIC_AUTH_DISABLED
            else "oauth_token_refused",
            f"The server refused the OAuth login ({r.said}).",
            _M365_OAUTH_ADVICE.get(
                r.reply.enhanced, _M365_OAUTH_ADVICE[Status.M365_BASIC_AUTH_DISABLED]
            ),
        )
    maybe_password = (
        " (Microsoft also answers 5.7.3 to a wrong password: check it too.)"
        if r.reply.enhanced == Status.M365_AUTH_UNSUCCESSFUL
        else ""
    )
    return Diagnosis(
        "basic_auth_disabled",
        f"The server refused password login: basic authentication is disabled ({r.said}).",
        _BASIC_AUTH_OFF_ADVICE + maybe_password,
    )


def app_password_required(r: Said) -> Diagnosis:
    return Diagnosis(
        "app_password_required",
        f"The provider wants an app password, not the account password ({r.said}).",
        app_password_advice(r.host)
        or (
            "Create an app password in the mail account's security settings and enter it "
            "as the SMTP Authentication Password."
        ),
    )


def wrong_password(r: Said) -> Diagnosis:
    if r.is_oauth:
        return Diagnosis(
            "oauth_token_refused",
            f"The server refused the OAuth token for {r.login!r} ({r.said}), even after "
            "Postroom renewed it.",
            "The SMTP Authentication Login must be the mailbox the token is for (the one "
            "that signed in, or the one a service account acts as). Google: the scope must "
            "be https://mail.google.com/, and for a service account the client ID needs it "
            "under Admin console → Security → Access and data control → API controls → "
            "Domain-wide delegation. Microsoft 365: see the SMTP.Send permission in "
            "docs/smtp-settings.md.",
        )
    advice = (
        "Check the SMTP Authentication Login (often the full email address) and enter the "
        "password again: the field is write-only, so type it and Save."
    )
    provider = app_password_advice(r.host)
    if provider:
        advice = f"{advice} {provider}"
    elif is_microsoft(r.host):
        advice = (
            f"{advice} Microsoft 365: if the password is right, Authenticated SMTP may be off "
            "for the mailbox or blocked by multi-factor authentication."
        )
    return Diagnosis(
        "wrong_password",
        f"The server rejected the login{f' {r.login!r}' if r.login else ''}: wrong user name "
        f"or password ({r.said}).",
        advice,
    )


def encryption_required(r: Said) -> Diagnosis:
    return Diagnosis(
        "encryption_required",
        f"The server accepts this only over an encrypted connection ({r.said}).",
        ENCRYPT_ADVICE,
    )


def auth_required(r: Said) -> Diagnosis:
    return Diagnosis(
        "auth_required",
        f"The server wants a login before it accepts mail ({r.said}).",
        "Fill in SMTP Authentication Login and Password (your provider's mailbox login).",
    )


def sender_not_allowed(r: Said) -> Diagnosis:
    who = f"the login {r.login!r}" if r.login else "this connection"
    return Diagnosis(
        "sender_not_allowed",
        f"The server does not let {who} send as {r.address or 'this address'} ({r.said}).",
        "Give the login permission to send as this address at your provider (Microsoft "
        "365, 5.7.60 SendAsDenied: a Send As permission, in the Exchange admin center → "
        "Recipients → Mailboxes → this address → Delegation → Send as → add the login's "
        "mailbox; Gmail: add it under "
        "Settings → Accounts → Send mail as; your own relay: its sender login map), or change "
        "the address in the User Master or company email address to one the login owns. A "
        "user can also connect their own mailbox on their profile.",
    )


def relay_denied(r: Said) -> Diagnosis:
    return Diagnosis(
        "relay_denied",
        f"The server refused to pass the message on to {r.address or 'the recipient'}: it "
        f"does not relay mail for this connection ({r.said}).",
        "Fill in SMTP Authentication Login and Password so the server knows who sends "
        "(servers relay to other domains only for logged-in users), or ask the server's "
        "administrator to allow relaying from this machine's address. Port 25 of a "
        f"provider's mail exchanger only accepts its own domains: use {SUBMISSION_PORT}.",
    )


def recipient_unknown(r: Said) -> Diagnosis:
    return Diagnosis(
        "recipient_unknown",
        f"The recipient {r.address or ''} does not exist ({r.said}).".replace("  ", " "),
        "Check the address for typos and try another one.",
    )


def non_ascii_address(r: Said) -> Diagnosis:
    return diagnose_smtputf8_missing(address=r.address or "The address")


def too_many(r: Said) -> Diagnosis:
    return Diagnosis(
        "too_many_recipients",
        f"The server takes no more recipients in one message ({r.said}).",
        "Postroom sends to the others in a separate transaction, at once; nothing to do.",
    )


def temporary_failure(r: Said) -> Diagnosis:
    return Diagnosis(
        "temporary_failure",
        f"The server refused {r.stage.command} for now ({r.said}): it is busy, rate-limiting "
        "or greylisting.",
        "Try again in a few minutes. If it repeats, check the provider's sending limits.",
    )


def greeting_refused(r: Said) -> Diagnosis:
    return Diagnosis(
        "greeting_refused",
        f"The server refused the connection at once ({r.said}).",
        "It may block this machine's IP address (for example as a dynamic or listed "
        "address) or not serve mail on this port. Check the port, and ask the server's "
        "administrator to allow this machine.",
    )


def message_rejected(r: Said) -> Diagnosis:
    return Diagnosis(
        "message_rejected",
        f"The server refused the message ({r.said}).",
        "Read the server's text: it names the policy (size, content or spam filter). For "
        "a test email, try again with another recipient; otherwise ask the provider.",
    )


def auth_failed(r: Said) -> Diagnosis:
    return Diagnosis(
        "auth_failed",
        f"The server refused the login ({r.said}).",
        "Check the SMTP Authentication Login and Password, and the authentication method "
        "under Advanced.",
    )


def refused(r: Said) -> Diagnosis:
    return Diagnosis(
        "refused",
        f"The server refused {r.stage.command} ({r.said}).",
        "The server's text says why; if it is unclear, ask the server's administrator and "
        "quote it.",
    )


def out_of_step(r: Said) -> Diagnosis:
    return Diagnosis(
        "out_of_step",
        f"The server answered {r.stage.command} with a reply that does not fit it ({r.said}): "
        "the conversation was out of step, so nothing counted as sent.",
        "Postroom tries again. If it repeats, ask the server's administrator what their log "
        "says; a proxy or antivirus between this machine and the server can cause it.",
    )


def not_smtp(r: Said) -> Diagnosis:
    return Diagnosis(
        "not_smtp",
        f"The answer to {r.stage.command} is not an SMTP reply ({r.said}).",
        "Check the SMTP Server Address and Communication Port: the service there may not be "
        "a mail server.",
    )
