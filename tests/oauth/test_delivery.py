"""Mail through OAuth routes, by the real worker, to a submission server that verifies each
XOAUTH2 token with the provider that issued it: the company relay's sign-in, an expired token
renewed once on the 334 challenge, a revoked sign-in pausing that route alone, and a user's
own mailbox carrying their Contact Email while company mail keeps its route."""

from __future__ import annotations

import asyncio
import logging

import pytest

from postroom.accounts.models import User
from postroom.company.smtp import company_smtp_config
from postroom.core.secrets import secret_decrypt
from postroom.mail.addresses import parse_address
from postroom.mail.check_report import StepStatus
from postroom.mail.diagnostics import check_connection
from postroom.mail.message import OutgoingEmail
from postroom.oauth import services
from postroom.oauth.models import Flow, OAuthConnection
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, MessageStatus, SendAs, ServerPause, Source
from tests.accounts.factories import user_make
from tests.oauth.conftest import (
    CALLBACK,
    CLIENT_ID,
    CLIENT_SECRET,
    MAILBOX,
    app_settings,
    company_on_oauth_relay,
    oauth_relay,
    provider_accepts,
    signed_in_company,
)
from tests.outbox.worker_harness import running_worker, status_of, wait_until
from tests.support.certs import CertAuthority
from tests.support.oauth_server import OAuthServer
from tests.support.smtpd import ScriptedSmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

GMAIL_REFUSAL = "535 5.7.8 Username and Password not accepted"


def company_mail(subject: str = "Invoice 2026-0042") -> Message:
    return message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(MAILBOX),
            to=[parse_address("bob@example.org")],
            subject=subject,
            text="Your invoice.",
        ),
        source=Source.API,
    )


def alices_quote(alice: User) -> Message:
    """Contact Email from Alice's own address, as the compose page queues it."""
    return message_enqueue(
        email=OutgoingEmail(
            from_=parse_address("alice@acme.example"),
            to=[parse_address("carol@customer.example")],
            subject="Your quote",
            text="Here it is.",
        ),
        source=Source.COMPOSE,
        sender_user=alice,
    )


def logins(server: ScriptedSmtpServer) -> list[tuple[str, bool]]:
    return [(attempt.login, attempt.is_success) for attempt in server.auth_attempts]


def test_mail_leaves_through_the_company_relay_logged_in_with_a_token(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company_on_oauth_relay(server, test_ca)
        message = company_mail()
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
    assert logins(server) == [(MAILBOX, True)]
    [received] = server.messages
    assert received.login == MAILBOX and received.is_tls


def test_a_token_the_server_refuses_is_renewed_once_and_the_mail_goes(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    provider.expire_access_tokens()  # Postroom still thinks it has an hour
    script = oauth_relay(test_ca, provider, auth_failure_reply=GMAIL_REFUSAL)
    with ScriptedSmtpServer(script) as server:
        company_on_oauth_relay(server, test_ca)
        message = company_mail()
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
    assert logins(server) == [(MAILBOX, False), (MAILBOX, True)]
    assert [r.grant_type for r in provider.requests].count("refresh_token") == 1
    assert not ServerPause.objects.exists()


def test_a_revoked_sign_in_pauses_the_route_holds_the_mail_and_tells_the_administrators(
    provider: OAuthServer,
    admin: User,
    test_ca: CertAuthority,
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = signed_in_company(provider, admin)
    provider.revoke_all()
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company_on_oauth_relay(server, test_ca)
        message = company_mail()
        with caplog.at_level(logging.INFO), running_worker():
            wait_until(lambda: ServerPause.objects.exists(), what="the pause")
    pause = ServerPause.objects.get()
    assert "OAuth access token" in pause.reason and "invalid_grant" in pause.reason
    assert status_of(message) == MessageStatus.QUEUED  # held, not failed
    assert server.messages == []
    [alert] = Message.objects.filter(subject="Postroom: an OAuth sign-in stopped working")
    assert alert.recipients.get().address == "root@acme.example"
    connection.refresh_from_db()
    secrets = [CLIENT_SECRET, secret_decrypt(connection.refresh_token_encrypted)]
    assert not any(secret in caplog.text for secret in secrets)


def connect_own_mailbox(provider: OAuthServer, user: User) -> OAuthConnection:
    """What "Connect my mailbox" does: the company's app, the user signing in as themselves."""
    connection = services.own_mailbox_prepare(user)
    start = services.sign_in_start(connection, redirect_uri=CALLBACK)
    code, _ = provider_accepts(start.url, account=user.email)
    services.sign_in_finish(
        connection, actor=user, redirect_uri=CALLBACK, code=code, code_verifier=start.code_verifier
    )
    return connection


def test_a_users_own_mailbox_carries_their_mail_and_company_mail_keeps_its_route(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    alice = user_make("alice", email="alice@acme.example")
    connect_own_mailbox(provider, alice)
    # The company relay may send only as the company's mailbox (Microsoft's SendAsDenied).
    script = oauth_relay(
        test_ca,
        provider,
        allowed_senders=frozenset({MAILBOX}),
        sender_refusal_reply=(
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
        ),
    )
    with ScriptedSmtpServer(script) as server:
        company_on_oauth_relay(server, test_ca)
        to_contact = alices_quote(alice)
        invoice = company_mail()
        with running_worker():
            wait_until(
                lambda: {status_of(to_contact), status_of(invoice)} == {MessageStatus.SENT},
                what="both sent",
            )
    assert Message.objects.get(pk=to_contact.pk).send_as == SendAs.OWN_MAILBOX
    by_subject = {m.content.split(b"Subject: ")[1].split(b"\r\n")[0]: m for m in server.messages}
    assert by_subject[b"Your quote"].login == "alice@acme.example"
    assert by_subject[b"Your quote"].mail_from == "alice@acme.example"
    assert by_subject[b"Invoice 2026-0042"].login == MAILBOX


def test_a_users_revoked_mailbox_pauses_only_their_route(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    alice = user_make("alice", email="alice@acme.example")
    connect_own_mailbox(provider, alice)
    provider.revoke_refresh_tokens("alice@acme.example")
    provider.expire_access_tokens()
    OAuthConnection.objects.filter(owner="company").update(access_token_encrypted="")
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company_on_oauth_relay(server, test_ca)
        mine = alices_quote(alice)
        invoice = company_mail()
        with running_worker():
            wait_until(lambda: status_of(invoice) == MessageStatus.SENT, what="company mail")
            wait_until(lambda: ServerPause.objects.exists(), what="alice's pause")
    [pause] = ServerPause.objects.all()
    assert pause.server.startswith("alice@acme.example at 127.0.0.1:")
    assert status_of(mine) == MessageStatus.QUEUED
    [alert] = Message.objects.filter(subject="Postroom: an OAuth sign-in stopped working")
    assert alert.recipients.get().address == "alice@acme.example"


def test_check_connection_logs_in_with_the_token_and_tries_each_sender(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company = company_on_oauth_relay(server, test_ca)
        report = asyncio.run(
            check_connection(company_smtp_config(company), senders=[company.sender_email])
        )
    assert report.is_ok, report.steps
    assert logins(server) == [(MAILBOX, True)]


def test_check_connection_explains_a_mailbox_without_smtp_auth_with_the_setting_to_change(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    refusal = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"
    with ScriptedSmtpServer(oauth_relay(test_ca, provider, auth_reply=refusal)) as server:
        company = company_on_oauth_relay(server, test_ca)
        report = asyncio.run(
            check_connection(company_smtp_config(company), senders=[company.sender_email])
        )
    [failed] = [step for step in report.steps if step.status is StepStatus.FAIL]
    text = f"{failed.summary} {failed.advice}"
    assert "OAuth" in text and "Authenticated SMTP" in text
    assert "SmtpClientAuthenticationDisabled" in text


def test_a_pause_on_an_oauth_route_gives_oauths_advice_not_the_passwords(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    refusal = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"
    with ScriptedSmtpServer(oauth_relay(test_ca, provider, auth_reply=refusal)) as server:
        company_on_oauth_relay(server, test_ca)
        company_mail()
        with running_worker():
            wait_until(lambda: ServerPause.objects.exists(), what="the pause")
    reason = ServerPause.objects.get().reason
    assert "The server refused the OAuth login" in reason
    assert "Authenticated SMTP" in reason and "switching to OAuth" not in reason


def test_app_only_mail_leaves_with_the_apps_own_token_for_a_granted_mailbox(
    provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    services.connection_save(
        actor=admin,
        owner="company",
        values=app_settings(provider, flow=Flow.APP_ONLY, scope="https://mail.example/.default"),
    )
    provider.grant_mailbox(CLIENT_ID, MAILBOX)  # Add-MailboxPermission for the app
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company_on_oauth_relay(server, test_ca)
        message = company_mail()
        with running_worker():
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
    assert logins(server) == [(MAILBOX, True)]
    assert [r.grant_type for r in provider.requests] == ["client_credentials"]
