"""The bounce mailbox logs in with the company's OAuth sign-in (XOAUTH2) at a real Dovecot,
whose oauth2 passdb asks the test OAuth provider whose each token is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postroom.accounts.models import User
from postroom.bounces.models import BounceMailbox, BounceReport, MailboxAuth
from postroom.bounces.polling import mailbox_poll
from postroom.bounces.selectors import bounce_mailbox_get
from tests.accounts.factories import admin_make
from tests.bounces.mails import dsn
from tests.oauth.conftest import CALLBACK, CLIENT_ID, CLIENT_SECRET, MAILBOX, signed_in_company
from tests.support.certs import CertAuthority
from tests.support.dovecot import DovecotServer
from tests.support.oauth_server import OAuthServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    with OAuthServer(default_account=MAILBOX) as server:
        server.register_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uri=CALLBACK)
        yield server


@pytest.fixture
def oauth_dovecot(test_ca: CertAuthority, provider: OAuthServer) -> Iterator[DovecotServer]:
    with DovecotServer(ca=test_ca, token_subject=provider.token_subject) as server:
        yield server


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@acme.example")


def _mailbox_on(server: DovecotServer, ca: CertAuthority, *, protocol: str) -> None:
    mailbox = bounce_mailbox_get()
    mailbox.is_enabled = True
    mailbox.protocol = protocol
    mailbox.security = "tls"
    mailbox.host = "127.0.0.1"
    mailbox.port = server.imaps_port if protocol == "imap" else server.pop3s_port
    mailbox.username = MAILBOX
    mailbox.auth_method = MailboxAuth.OAUTH_COMPANY
    mailbox.ca_certificate = ca.pem
    mailbox.save()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_the_company_sign_in_reads_the_mailbox_with_xoauth2(
    oauth_dovecot: DovecotServer,
    provider: OAuthServer,
    admin: User,
    test_ca: CertAuthority,
    protocol: str,
) -> None:
    signed_in_company(provider, admin)
    _mailbox_on(oauth_dovecot, test_ca, protocol=protocol)
    oauth_dovecot.deliver(MAILBOX, dsn())

    result = mailbox_poll(runner="test")

    assert result.is_ok, result.message
    assert result.read == 1
    assert BounceReport.objects.count() == 1
    assert f"Login: user=<{MAILBOX}>, method=XOAUTH2" in oauth_dovecot.log_tail(50)


def test_a_revoked_token_is_renewed_once_and_then_said_plainly(
    oauth_dovecot: DovecotServer, provider: OAuthServer, admin: User, test_ca: CertAuthority
) -> None:
    signed_in_company(provider, admin)
    _mailbox_on(oauth_dovecot, test_ca, protocol="imap")
    oauth_dovecot.deliver(MAILBOX, dsn())

    # The stored access token stops working: Postroom asks for a new one and gets in.
    provider.expire_access_tokens()
    assert mailbox_poll(runner="test").read == 1

    # The sign-in itself is revoked: the page says what to do.
    provider.revoke_all()
    oauth_dovecot.deliver(MAILBOX, dsn())
    refused = mailbox_poll(runner="test")
    assert not refused.is_ok
    assert refused.message.startswith("The provider refused renewing the sign-in")
    assert refused.message.endswith("sign in again.")
    assert not BounceMailbox.objects.get(pk=1).last_poll_ok
