"""The OAuth 2.0 test provider (tests/support/oauth_server.py) and AUTH XOAUTH2 in
ScriptedSmtpServer behave as Google's and Microsoft's do.

Driven by plain httpx and the standard library's smtplib, so a failure here points at the
fixtures, not at Postroom's OAuth client.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.certs import CertAuthority, IssuedCert
from tests.support.jws import public_key_pem, sign_rs256
from tests.support.oauth_checks import JWT_BEARER
from tests.support.oauth_server import OAuthServer, TokenRequest
from tests.support.smtpd import AuthAttempt, ScriptedSmtpServer, SmtpdScript
from tests.support.xoauth2 import GMAIL_ERROR_CHALLENGE, xoauth2_response

LOGIN = "mailer@example.com"
SCOPE = "https://mail.google.com/"
# Where the provider sends the browser back; nothing listens there, the test reads the redirect.
CALLBACK = "http://127.0.0.1:9/oauth/callback"
SERVICE_ACCOUNT = "relay@postroom-test.iam.example.com"
GMAIL_REFUSAL = "535 5.7.8 Username and Password not accepted"
TIMEOUT = 5  # seconds; smtplib's default is to wait forever


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    with OAuthServer(default_account=LOGIN) as server:
        yield server


@pytest.fixture
def http(provider: OAuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def service_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="oauth-fixture")


def pkce_pair() -> tuple[str, str]:
    """A code_verifier and its S256 code_challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in(
    http: httpx.Client, *, account: str = LOGIN, action: str = "accept", **params: str
) -> dict[str, str]:
    """Open the sign-in page and post its form as a browser would: the redirect's query."""
    query = {
        "client_id": "postroom",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": SCOPE,
        "state": "state-1",
        **params,
    }
    page = http.get("/authorize", params=query)
    assert page.status_code == 200, page.text
    assert f"Sign in to Test Provider as {LOGIN}" in page.text
    found = re.search(r'name="request" value="([^"]+)"', page.text)
    assert found is not None
    answer = http.post(
        "/authorize", data={"request": found[1], "account": account, "action": action}
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(f"{CALLBACK}?")
    return dict(parse_qsl(urlsplit(location).query))


def exchange(http: httpx.Client, code: str, **fields: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    return http.post("/token", data={**form, **fields})


def tokens_for(provider: OAuthServer, http: httpx.Client, account: str = LOGIN) -> dict[str, Any]:
    """Tokens for `account` by the code flow of a public client with PKCE."""
    provider.register_client("postroom", redirect_uri=CALLBACK)
    verifier, challenge = pkce_pair()
    code = sign_in(http, account=account, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(http, code["code"], client_id="postroom", code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_sign_in_page_has_what_a_browser_test_fills_in_and_clicks(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK, require_pkce=False)
    query = {"client_id": "postroom", "redirect_uri": CALLBACK, "response_type": "code"}

    page = http.get("/authorize", params={**query, "scope": SCOPE, "state": "s"})

    assert f"<h1>Sign in to Test Provider as {LOGIN}</h1>" in page.text
    assert '<label for="account">Email</label>' in page.text
    assert f'<input id="account" name="account" type="email" value="{LOGIN}"' in page.text
    assert re.search(r'<button id="accept"[^>]*>Accept</button>', page.text)
    assert re.search(r'<button id="cancel"[^>]*>Cancel</button>', page.text)


def test_the_code_flow_with_pkce_gives_tokens_for_the_account_signed_in(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK)
    verifier, challenge = pkce_pair()

    answer = sign_in(
        http, account="Owner@Example.com", code_challenge=challenge, code_challenge_method="S256"
    )
    response = exchange(http, answer["code"], client_id="postroom", code_verifier=verifier)

    assert answer["state"] == "state-1"
    tokens = response.json()
    assert response.headers["Cache-Control"] == "no-store"  # RFC 6749 §5.1
    assert (tokens["token_type"], tokens["expires_in"], tokens["scope"]) == ("Bearer", 3600, SCOPE)
    assert "refresh_token_expires_in" not in tokens
    assert provider.token_subject(tokens["access_token"]) == "Owner@Example.com"
    assert provider.requests == [TokenRequest("authorization_code", "postroom", None)]
    assert (provider.codes_issued, provider.refresh_tokens_issued) == (1, 1)
    recorded = repr(provider.requests)
    for secret in (answer["code"], tokens["access_token"], tokens["refresh_token"], verifier):
        assert secret not in recorded


def test_a_wrong_code_verifier_is_refused_and_spends_the_code(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK)
    verifier, challenge = pkce_pair()
    code = sign_in(http, code_challenge=challenge, code_challenge_method="S256")["code"]

    wrong = exchange(http, code, client_id="postroom", code_verifier=pkce_pair()[0])
    right = exchange(http, code, client_id="postroom", code_verifier=verifier)

    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert "code_verifier does not match" in wrong.json()["error_description"]
    assert (right.status_code, right.json()["error"]) == (400, "invalid_grant")
    assert provider.access_tokens_issued == 0


def test_cancel_goes_back_with_access_denied_and_the_state(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK, require_pkce=False)

    answer = sign_in(http, action="cancel")

    assert (answer["error"], answer["state"]) == ("access_denied", "state-1")
    assert "code" not in answer


def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK, require_pkce=False)
    query = {"client_id": "postroom", "response_type": "code", "scope": SCOPE, "state": "s"}

    page = http.get("/authorize", params={**query, "redirect_uri": "http://evil.example/cb"})

    assert page.status_code == 400
    assert "is not the one registered" in page.text
    assert "Location" not in page.headers


def test_a_public_client_without_a_code_challenge_is_sent_back_with_invalid_request(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("postroom", redirect_uri=CALLBACK)
    query = {"client_id": "postroom", "redirect_uri": CALLBACK, "response_type": "code"}

    answer = http.get("/authorize", params={**query, "scope": SCOPE, "state": "s"})

    assert answer.status_code == 302
    error = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert (error["error"], error["state"]) == ("invalid_request", "s")
    assert "code_challenge" in error["error_description"]


def test_a_confidential_client_authenticates_by_basic_or_in_the_body(
    provider: OAuthServer, http: httpx.Client
) -> None:
    secret = "s3cret:with+odd/chars"
    provider.register_client("web", secret=secret, redirect_uri=CALLBACK, require_pkce=False)
    # RFC 6749 §2.3.1: Basic credentials are form-encoded before base64.
    basic = httpx.BasicAuth("web", "s3cret%3Awith%2Bodd%2Fchars")

    by_basic = http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": sign_in(http, client_id="web")["code"]}
        | {"redirect_uri": CALLBACK},
        auth=basic,
    )
    in_body = exchange(
        http, sign_in(http, client_id="web")["code"], client_id="web", client_secret=secret
    )
    wrong = exchange(
        http, sign_in(http, client_id="web")["code"], client_id="web", client_secret="nope"
    )

    assert (by_basic.status_code, in_body.status_code) == (200, 200), by_basic.text
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert [r.error for r in provider.requests] == [None, None, "invalid_client"]
    assert secret not in repr(provider.requests)


def test_refresh_gives_new_access_tokens_until_the_account_revokes_it(
    provider: OAuthServer, http: httpx.Client
) -> None:
    refresh_token = tokens_for(provider, http)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "postroom"}

    refreshed = http.post("/token", data=form)
    revoked = provider.revoke_refresh_tokens(LOGIN.upper())
    refused = http.post("/token", data=form)

    assert refreshed.status_code == 200, refreshed.text
    assert provider.token_subject(refreshed.json()["access_token"]) == LOGIN
    assert "refresh_token" not in refreshed.json()  # Google keeps the one it gave
    assert revoked == 1
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "The refresh token is unknown, expired or revoked.",
    }


def test_rotation_replaces_the_refresh_token_and_keeps_its_deadline(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.rotate_refresh_tokens = True
    provider.refresh_token_lifetime = 86400  # Microsoft's single-page apps: 24 hours
    first = tokens_for(provider, http)
    form = {"grant_type": "refresh_token", "client_id": "postroom"}

    rotated = http.post("/token", data={**form, "refresh_token": first["refresh_token"]}).json()
    old_again = http.post("/token", data={**form, "refresh_token": first["refresh_token"]})

    assert first["refresh_token_expires_in"] == 86400
    assert rotated["refresh_token"] != first["refresh_token"]
    assert 86399 <= rotated["refresh_token_expires_in"] <= 86400
    assert old_again.json()["error"] == "invalid_grant"


def test_revoking_a_refresh_token_at_the_endpoint_ends_its_access_tokens(
    provider: OAuthServer, http: httpx.Client
) -> None:
    tokens = tokens_for(provider, http)

    revoked = http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": "postroom"})
    unknown = http.post("/revoke", data={"token": "never-issued", "client_id": "postroom"})

    assert (revoked.status_code, unknown.status_code) == (200, 200)  # RFC 7009 §2.2
    assert provider.token_subject(tokens["access_token"]) is None
    assert provider.revocation_requests == 2


def test_client_credentials_give_a_token_for_the_client_itself_and_no_refresh(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.register_client("daemon", secret="d-secret")
    provider.register_client("spa", redirect_uri=CALLBACK)
    form = {"grant_type": "client_credentials", "scope": "https://outlook.office365.com/.default"}

    response = http.post("/token", data=form, auth=("daemon", "d-secret"))
    public = http.post("/token", data={**form, "client_id": "spa"})

    tokens = response.json()
    assert tokens["scope"] == form["scope"]
    assert "refresh_token" not in tokens  # RFC 6749 §4.4.3
    assert provider.token_subject(tokens["access_token"]) == "daemon"
    assert public.json()["error"] == "unauthorized_client"


def assertion(key: rsa.RSAPrivateKey, audience: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": SERVICE_ACCOUNT,
        "sub": LOGIN,
        "aud": audience,
        "scope": SCOPE,
        "iat": now,
        "exp": now + 600,
    }
    return sign_rs256({**claims, **changes}, key)


def test_a_jwt_bearer_assertion_signed_with_the_registered_key_acts_for_its_subject(
    provider: OAuthServer, http: httpx.Client, service_key: rsa.RSAPrivateKey
) -> None:
    provider.register_client(SERVICE_ACCOUNT, public_key_pem=public_key_pem(service_key))
    signed = assertion(service_key, provider.token_url)

    response = http.post("/token", data={"grant_type": JWT_BEARER, "assertion": signed})

    tokens = response.json()
    assert response.status_code == 200, response.text
    assert (tokens["scope"], "refresh_token" in tokens) == (SCOPE, False)
    assert provider.token_subject(tokens["access_token"]) == LOGIN
    assert provider.requests == [TokenRequest(JWT_BEARER, SERVICE_ACCOUNT, None)]


@pytest.mark.parametrize(
    "flaw",
    ["another key", "another audience", "expired", "no subject", "alg none"],
)
def test_a_flawed_jwt_bearer_assertion_is_an_invalid_grant(
    provider: OAuthServer, http: httpx.Client, service_key: rsa.RSAPrivateKey, flaw: str
) -> None:
    provider.register_client(SERVICE_ACCOUNT, public_key_pem=public_key_pem(service_key))
    url = provider.token_url
    signed = {
        "another key": lambda: assertion(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), url
        ),
        "another audience": lambda: assertion(service_key, "https://oauth2.example/token"),
        "expired": lambda: assertion(service_key, url, exp=int(time.time()) - 1),
        "no subject": lambda: assertion(service_key, url, sub=""),
        "alg none": lambda: (
            "eyJhbGciOiJub25lIn0." + assertion(service_key, url).split(".")[1] + "."
        ),
    }[flaw]()

    response = http.post("/token", data={"grant_type": JWT_BEARER, "assertion": signed})

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert provider.access_tokens_issued == 0


def test_access_tokens_expire_after_the_lifetime_set_or_when_told(
    provider: OAuthServer, http: httpx.Client
) -> None:
    provider.access_token_lifetime = 0.05
    short = tokens_for(provider, http)
    provider.access_token_lifetime = 3600
    long = tokens_for(provider, http)

    time.sleep(0.1)
    after_the_lifetime = (provider.token_subject(short["access_token"]), long["access_token"])
    provider.expire_access_tokens()

    assert short["expires_in"] == 1  # whole seconds, rounded up, as providers send
    assert after_the_lifetime[0] is None
    assert provider.token_subject(after_the_lifetime[1]) is None


def test_the_provider_speaks_https_with_a_test_ca_certificate(
    test_ca: CertAuthority, cert: IssuedCert
) -> None:
    with OAuthServer(cert=cert) as provider:
        provider.register_client("daemon", secret="d-secret")
        trusting = ssl.create_default_context(cafile=test_ca.cert_path)
        with httpx.Client(verify=trusting, timeout=TIMEOUT) as client:
            response = client.post(
                provider.token_url,
                data={"grant_type": "client_credentials", "scope": SCOPE},
                auth=("daemon", "d-secret"),
            )

    assert provider.token_url.startswith("https://127.0.0.1:")
    assert response.status_code == 200, response.text
    assert not provider.errors


def xoauth2(login: str, token: str, challenges: list[bytes]) -> Callable[..., str]:
    """smtplib's authobject: the response when asked (first, or after an empty 334), and an
    empty line in answer to the server's JSON error, as Gmail expects."""

    def respond(challenge: bytes | None = None) -> str:
        if challenge:
            challenges.append(challenge)
            return ""
        return xoauth2_response(login, token)

    return respond


def smtp_client(server: ScriptedSmtpServer, test_ca: CertAuthority) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    client.starttls(context=ssl.create_default_context(cafile=test_ca.cert_path))
    client.ehlo()
    return client


@pytest.mark.parametrize("is_initial_response", [True, False])
def test_xoauth2_logs_in_with_a_valid_token_and_sends_as_that_login(
    provider: OAuthServer,
    http: httpx.Client,
    test_ca: CertAuthority,
    cert: IssuedCert,
    is_initial_response: bool,
) -> None:
    token = tokens_for(provider, http)["access_token"]
    challenges: list[bytes] = []
    script = SmtpdScript(
        cert=cert, auth_mechanisms=("XOAUTH2",), oauth=provider, allowed_senders=frozenset({LOGIN})
    )

    with ScriptedSmtpServer(script) as server:
        with smtp_client(server, test_ca) as client:
            offered = client.esmtp_features["auth"]
            reply = client.auth(
                "XOAUTH2",
                xoauth2(LOGIN.upper(), token, challenges),
                initial_response_ok=is_initial_response,
            )
            client.sendmail(LOGIN, ["bob@example.org"], b"Subject: Hi\r\n\r\nHello.\r\n")
        [message] = server.wait_for_messages(1)

    assert offered.split() == ["XOAUTH2"]
    assert reply == (235, b"2.7.0 Authentication successful")
    assert challenges == []
    assert message.login == LOGIN.upper()
    assert server.auth_attempts == [AuthAttempt(1, "XOAUTH2", LOGIN.upper(), True, True)]
    assert token not in repr(server.commands)


@pytest.mark.parametrize("why", ["expired", "revoked", "another account's", "unknown"])
def test_a_refused_token_gets_the_json_challenge_and_then_535(
    provider: OAuthServer,
    http: httpx.Client,
    test_ca: CertAuthority,
    cert: IssuedCert,
    why: str,
) -> None:
    account = "other@example.com" if why == "another account's" else LOGIN
    token = tokens_for(provider, http, account=account)["access_token"]
    if why == "expired":
        provider.expire_access_tokens()
    elif why == "revoked":
        provider.revoke_all()
    elif why == "unknown":
        token = "never-issued"
    challenges: list[bytes] = []
    script = SmtpdScript(
        cert=cert, auth_mechanisms=("XOAUTH2",), oauth=provider, auth_failure_reply=GMAIL_REFUSAL
    )

    with (
        ScriptedSmtpServer(script) as server,
        smtp_client(server, test_ca) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.auth("XOAUTH2", xoauth2(LOGIN, token, challenges))

    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        535,
        b"5.7.8 Username and Password not accepted",
    )
    assert challenges == [GMAIL_ERROR_CHALLENGE.encode()]
    assert server.auth_attempts == [AuthAttempt(1, "XOAUTH2", LOGIN, False, True)]


def test_xoauth2_without_an_oauth_server_is_a_mistake_in_the_script() -> None:
    with pytest.raises(ValueError, match="XOAUTH2 needs oauth="):
        ScriptedSmtpServer(auth_mechanisms=("XOAUTH2",))
