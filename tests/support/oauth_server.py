"""A real OAuth 2.0 authorization server on 127.0.0.1 for tests: the "Test Provider".

It stands in for Google's and Microsoft's sign-in when Postroom relays mail over SMTP with
XOAUTH2. It runs in a thread like tests/support/smtpd.py's ScriptedSmtpServer, speaks HTTP
(or HTTPS with a test CA certificate) and implements, strictly:

- `GET /authorize` (RFC 6749 §4.1.1 with PKCE, RFC 7636): a sign-in page with the account's
  email and "Accept" / "Cancel" buttons; posting it redirects with `code` and `state`, or
  with `error=access_denied`;
- `POST /token` (RFC 6749 §3.2): the grants authorization_code, refresh_token,
  client_credentials and jwt-bearer (RFC 7523), clients authenticated by
  client_secret_basic or client_secret_post;
- `POST /revoke` (RFC 7009).

Tests steer it from Python (`register_client`, `expire_access_tokens`,
`revoke_refresh_tokens`, `access_token_lifetime`) and ask it whose an access token is
(`token_subject`, `token_may_act_as`): ScriptedSmtpServer asks the latter for AUTH XOAUTH2.

    with OAuthServer() as provider:
        provider.register_client("postroom", secret="s3cret", redirect_uri=callback)
        ...  # point Postroom at provider.authorize_url and provider.token_url

The rules and state behind the endpoints live in tests/support/oauth_provider.py.
"""

from __future__ import annotations

import html
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.support.certs import IssuedCert
from tests.support.oauth_checks import OAuthError
from tests.support.oauth_provider import OAuthProvider, PendingAuthorization, TokenRequest

LOOPBACK = "127.0.0.1"
_STOP_TIMEOUT = 5.0  # seconds; once shutdown() returns, the thread ends at once
# How often serve_forever looks at the stop flag: stop() waits up to this long.
_POLL_INTERVAL = 0.05
# A token request is a few hundred bytes; this bound only stops a runaway test client.
_MAX_BODY = 64 * 1024
_FORM = "application/x-www-form-urlencoded"

__all__ = ["OAuthServer", "TokenRequest"]  # TokenRequest: what `requests` holds


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _page(status: int, title: str, body: str) -> _Response:
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - Test Provider</title></head>\n<body>\n{body}\n"
        "</body></html>\n"
    )
    return _Response(status, document.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _error_page(message: str) -> _Response:
    return _page(400, "Error", f'<h1>Error</h1>\n<p id="error">{html.escape(message)}</p>')


def _sign_in_page(request_id: str, pending: PendingAuthorization, account: str) -> _Response:
    """The page a browser test drives: label "Email", buttons "Accept" and "Cancel"."""
    account = html.escape(account)
    return _page(
        200,
        "Sign in",
        f"<h1>Sign in to Test Provider as {account}</h1>\n"
        f'<p id="consent">{html.escape(pending.client_id)} asks for:'
        f' <span id="scope">{html.escape(pending.scope)}</span></p>\n'
        '<form method="post" action="/authorize">\n'
        f'<input type="hidden" name="request" value="{request_id}">\n'
        '<label for="account">Email</label>\n'
        f'<input id="account" name="account" type="email" value="{account}" required>\n'
        '<button id="accept" type="submit" name="action" value="accept">Accept</button>\n'
        # formnovalidate: cancelling works even with the email field emptied.
        '<button id="cancel" type="submit" name="action" value="cancel" formnovalidate>'
        "Cancel</button>\n</form>",
    )


def _redirect(location: str) -> _Response:
    return _Response(HTTPStatus.FOUND, headers={"Location": location})


def _json(status: int, body: bytes) -> _Response:
    # RFC 6749 §5.1: token responses must not be cached.
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    if status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Basic realm="Test Provider"'  # RFC 6749 §5.2
    return _Response(status, body, headers)


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """RFC 6749 §3.1 and §3.2: no parameter may be sent more than once."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise OAuthError("invalid_request", f"The parameter {name} is repeated.")
        values[name] = value
    return values


def _authorize_page(oauth: OAuthServer, query: str) -> _Response:
    try:
        params = _single_values(parse_qsl(query, keep_blank_values=True))
    except OAuthError as error:
        return _error_page(error.description)
    client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
    refusal = oauth._redirect_refusal(client_id, redirect_uri)
    if refusal:
        # RFC 6749 §4.1.2.1: never redirect to a URI that is not the client's.
        return _error_page(refusal)
    try:
        request_id, pending = oauth._start_authorization(params)
    except OAuthError as error:
        return _redirect(error.redirect_uri(redirect_uri, params.get("state")))
    return _sign_in_page(request_id, pending, oauth.default_account)


def _sign_in(oauth: OAuthServer, form: dict[str, str]) -> _Response:
    pending = oauth._take_authorization(form.get("request", ""))
    if pending is None:
        return _error_page("This sign-in request is unknown or already answered.")
    if form.get("action") != "accept":
        denied = OAuthError("access_denied", "The account owner cancelled the sign-in.")
        return _redirect(denied.redirect_uri(pending.redirect_uri, pending.state))
    account = form.get("account", "").strip()
    if not account:
        return _error_page("Enter the email of the account to sign in with.")
    return _redirect(oauth._issue_code(pending, account))


def _revoked(oauth: OAuthServer, authorization: str | None, form: dict[str, str]) -> _Response:
    oauth._revoke_token(authorization, form)
    return _Response(HTTPStatus.OK)  # RFC 7009 §2.2: also for a token it never knew


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP: routes each request to OAuthServer and writes back what it answers."""

    server: _HttpServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/authorize":
            self._send(_Response(HTTPStatus.NOT_FOUND))
            return
        self._send(self._answer(lambda: _authorize_page(self.server.oauth, url.query)))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        oauth = self.server.oauth
        authorization = self.headers.get("Authorization")
        routes: dict[str, Callable[[dict[str, str]], _Response]] = {
            "/authorize": lambda form: _sign_in(oauth, form),
            "/token": lambda form: _json(
                HTTPStatus.OK,
                oauth._token_response(authorization, form, token_url=oauth.token_url),
            ),
            "/revoke": lambda form: _revoked(oauth, authorization, form),
        }
        route = routes.get(path)
        if route is None:
            self._send(_Response(HTTPStatus.NOT_FOUND))
            return
        self._send(self._answer(lambda: route(self._form())))

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise OAuthError("invalid_request", "The request body is too large.")
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        # RFC 6749 §4.1.3 and RFC 7009 §2.1: the parameters come form-encoded.
        if not (self.headers.get("Content-Type") or "").startswith(_FORM):
            raise OAuthError("invalid_request", f"The body must be {_FORM}.")
        return _single_values(parse_qsl(body, keep_blank_values=True))

    def _answer(self, respond: Callable[[], _Response]) -> _Response:
        try:
            return respond()
        except OAuthError as error:
            return _json(error.status, error.body())
        except Exception as error:  # a bug in the fixture: fail the test, not the socket
            self.server.oauth.errors.append(error)
            return _Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"test provider error")

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        """Stay quiet: the default prints every request line to stderr, query included."""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that leaves a connection open must not block stop()

    def __init__(self, oauth: OAuthServer) -> None:
        self.oauth = oauth
        super().__init__((LOOPBACK, 0), _Handler)


class OAuthServer(OAuthProvider):
    """An OAuth 2.0 provider on 127.0.0.1:<free port>, in a thread, until stop().

    Settings are attributes a test may change at any time, including between requests:
    `access_token_lifetime` (seconds, a float, so a test can make tokens expire in 50 ms),
    `refresh_token_lifetime` (None: refresh tokens never expire; set, the token response
    carries `refresh_token_expires_in` as Microsoft's does for single-page apps),
    `rotate_refresh_tokens` (each refresh answers a new refresh token and revokes the old,
    as Microsoft does; Google keeps one) and `default_account` (prefilled on the sign-in
    page). With `cert` it speaks HTTPS.
    """

    def __init__(
        self,
        *,
        default_account: str = "mailer@example.com",
        access_token_lifetime: float = 3600,
        refresh_token_lifetime: float | None = None,
        rotate_refresh_tokens: bool = False,
        cert: IssuedCert | None = None,
    ) -> None:
        super().__init__(
            access_token_lifetime=access_token_lifetime,
            refresh_token_lifetime=refresh_token_lifetime,
            rotate_refresh_tokens=rotate_refresh_tokens,
        )
        self.default_account = default_account
        self.cert = cert
        self.errors: list[BaseException] = []  # exceptions inside the fixture's handlers
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._http is not None, "start the server first"
        scheme = "https" if self.cert else "http"
        return f"{scheme}://{LOOPBACK}:{self._http.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def revoke_url(self) -> str:
        return f"{self.url}/revoke"

    # Life cycle.
    def start(self) -> OAuthServer:
        assert self._thread is None, "already started"
        self._http = _HttpServer(self)
        if self.cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert.cert_path, self.cert.key_path)
            # The handshake then happens in the request's thread, not in the accept loop,
            # so one client that never completes it cannot stall the others.
            self._http.socket = context.wrap_socket(
                self._http.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(_POLL_INTERVAL,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None or self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(_STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
