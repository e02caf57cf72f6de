"""Setting up an OAuth sign-in, signing in and keeping the tokens fresh, against a real OAuth
2.0 provider on loopback (tests/support/oauth_server.py): PKCE, refresh ahead of expiry, a
revoked sign-in told in words (once), app-only and service-account tokens."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.models import AuditEntry
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_decrypt
from postroom.oauth import services
from postroom.oauth.flows import OAuthTokenError
from postroom.oauth.models import COMPANY_OWNER, Flow, OAuthConnection, Provider
from postroom.oauth.tokens import access_token_get, sign_ins_watch
from postroom.outbox.models import Message
from tests.oauth.conftest import (
    CALLBACK,
    CLIENT_ID,
    CLIENT_SECRET,
    MAILBOX,
    app_settings,
    provider_accepts,
    signed_in_company,
)
from tests.support.jws import public_key_pem
from tests.support.oauth_server import OAuthServer

pytestmark = pytest.mark.django_db


def test_the_sign_in_uses_pkce_and_keeps_the_tokens_encrypted(
    provider: OAuthServer, admin: User
) -> None:
    connection = services.connection_save(
        actor=admin, owner=COMPANY_OWNER, values=app_settings(provider)
    )
    start = services.sign_in_start(connection, redirect_uri=CALLBACK)
    assert "code_challenge_method=S256" in start.url and "code_challenge=" in start.url
    code, _ = provider_accepts(start.url)
    with pytest.raises(OAuthTokenError, match="invalid_grant"):  # the verifier is the proof
        services.sign_in_finish(
            connection, actor=admin, redirect_uri=CALLBACK, code=code, code_verifier="x" * 64
        )
    connection = signed_in_company(provider, admin)
    assert connection.is_signed_in and connection.signed_in_at is not None
    access = secret_decrypt(connection.access_token_encrypted)
    assert provider.token_subject(access) == MAILBOX
    stored = " ".join(
        str(value) for value in OAuthConnection.objects.values_list().get(pk=connection.pk)
    )
    assert access not in stored and CLIENT_SECRET not in stored
    audit = " ".join(str(entry.changes) for entry in AuditEntry.objects.all())
    assert "Client secret" in audit and CLIENT_SECRET not in audit and access not in audit


def test_a_token_about_to_run_out_is_renewed_and_a_fresh_one_is_kept(
    provider: OAuthServer, admin: User
) -> None:
    connection = signed_in_company(provider, admin)
    first = access_token_get(connection, mailbox=MAILBOX)
    assert access_token_get(connection, mailbox=MAILBOX) == first  # fresh: no request
    refreshes = sum(r.grant_type == "refresh_token" for r in provider.requests)
    assert refreshes == 0
    connection.access_expires_at = timezone.now() + dt.timedelta(minutes=4)  # within 5
    connection.save()
    second = access_token_get(connection, mailbox=MAILBOX)
    assert second != first and provider.token_subject(second) == MAILBOX
    assert [r.grant_type for r in provider.requests][-1] == "refresh_token"
    connection.refresh_from_db()
    assert connection.access_expires_at > timezone.now() + dt.timedelta(minutes=50)


def test_a_revoked_sign_in_is_said_in_words_and_told_to_the_administrators_once(
    provider: OAuthServer, admin: User
) -> None:
    connection = signed_in_company(provider, admin)
    provider.revoke_refresh_tokens(MAILBOX)
    for _ in range(2):
        with pytest.raises(OAuthTokenError) as refused:
            access_token_get(connection, mailbox=MAILBOX, renew=True)
    assert "invalid_grant" in refused.value.message
    assert "sign in again" in refused.value.message
    connection.refresh_from_db()
    assert connection.failure == refused.value.message and connection.failed_at
    [alert] = Message.objects.filter(subject__contains="OAuth")
    assert alert.subject == "Postroom: an OAuth sign-in stopped working"
    assert list(alert.recipients.values_list("address", flat=True)) == ["root@acme.example"]
    # Signing in again clears it.
    signed_in_company(provider, admin)
    assert OAuthConnection.objects.get().failure == ""


def test_app_only_gets_its_token_with_the_client_credentials(
    provider: OAuthServer, admin: User
) -> None:
    connection = services.connection_save(
        actor=admin,
        owner=COMPANY_OWNER,
        values=app_settings(provider, flow=Flow.APP_ONLY, scope="https://mail.example/.default"),
    )
    assert connection.is_signed_in  # nobody needs to sign in
    with pytest.raises(ValidationError):
        services.sign_in_start(connection, redirect_uri=CALLBACK)
    services.token_try(connection, mailbox=MAILBOX)
    provider.grant_mailbox(CLIENT_ID, MAILBOX)
    token = access_token_get(connection, mailbox=MAILBOX)
    assert provider.token_may_act_as(token, MAILBOX)
    assert [r.grant_type for r in provider.requests] == ["client_credentials"]


def test_a_google_service_account_acts_as_the_mailbox(provider: OAuthServer, admin: User) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = "postroom@acme-project.iam.gserviceaccount.example"
    provider.register_client(account, public_key_pem=public_key_pem(key))
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_json = json.dumps(
        {"type": "service_account", "client_email": account, "private_key": private_pem}
    )
    connection = services.connection_save(
        actor=admin,
        owner=COMPANY_OWNER,
        values=app_settings(
            provider,
            provider=Provider.GOOGLE,
            flow=Flow.SERVICE_ACCOUNT,
            client_secret="",
            service_account_key=key_json,
        ),
    )
    token = access_token_get(connection, mailbox=MAILBOX)
    assert provider.token_subject(token) == MAILBOX
    assert private_pem not in str(AuditEntry.objects.values_list("changes", flat=True))


def test_a_service_account_key_that_is_not_googles_json_is_refused_in_words(
    provider: OAuthServer, admin: User
) -> None:
    with pytest.raises(ValidationError, match="JSON key file") as refused:
        services.connection_save(
            actor=admin,
            owner=COMPANY_OWNER,
            values=app_settings(
                provider,
                provider=Provider.GOOGLE,
                flow=Flow.SERVICE_ACCOUNT,
                service_account_key="-----BEGIN PRIVATE KEY-----",
            ),
        )
    assert refused.value.field == "service_account_key"


def test_another_client_forgets_the_tokens_a_new_secret_keeps_them(
    provider: OAuthServer, admin: User
) -> None:
    signed_in_company(provider, admin)
    services.connection_save(
        actor=admin,
        owner=COMPANY_OWNER,
        values=app_settings(provider, client_secret="a-new-secret"),
    )
    assert OAuthConnection.objects.get().is_signed_in
    services.connection_save(
        actor=admin, owner=COMPANY_OWNER, values=app_settings(provider, client_id="another-app")
    )
    assert not OAuthConnection.objects.get().is_signed_in


def test_the_watch_renews_what_runs_out_soon_and_warns_before_a_sign_in_ends(
    provider: OAuthServer, admin: User
) -> None:
    provider.refresh_token_lifetime = 3 * 24 * 3600  # Microsoft says when a sign-in ends
    connection = signed_in_company(provider, admin)
    assert connection.refresh_expires_at is not None
    connection.access_expires_at = timezone.now() + dt.timedelta(minutes=8)
    connection.save()
    sign_ins_watch(mailboxes={COMPANY_OWNER: MAILBOX})
    sign_ins_watch(mailboxes={COMPANY_OWNER: MAILBOX})
    connection.refresh_from_db()
    assert connection.access_expires_at > timezone.now() + dt.timedelta(minutes=50)
    assert sum(r.grant_type == "refresh_token" for r in provider.requests) == 1
    [warning] = Message.objects.filter(subject="Postroom: an OAuth sign-in ends soon")
    assert warning.recipients.get().address == "root@acme.example"
