"""Request bodies are bounded before anyone is authenticated (issue 7, finding 3).

An unauthenticated client announcing a huge body must get 413 at once, without the server
reading (and spooling to disk) what it sends; the largest legitimate request still passes.
The real `postroom run` (waitress) is tested, and Django's own check under another server.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.test import Client
from django.urls import reverse

from postroom.core.limits import base64_size, request_body_limit, request_body_limit_check
from tests.accounts.factories import user_make
from tests.core.processes import postroom_env, postroom_running, postroom_shell, read_until

MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # the default of POSTROOM_MAX_MESSAGE_BYTES
# Small, so that the API's send (not the CSV import) sets the limit and the test shows the
# limit leaves room for the largest attachment and no more than that.
IMPORT_MAX_BYTES = 1024 * 1024
LIMIT = request_body_limit(max_message_bytes=MAX_MESSAGE_BYTES, import_max_bytes=IMPORT_MAX_BYTES)
# The attack of the issue: 400 MB announced, a little sent.
ATTACK_LENGTH = 400 * 1000 * 1000
SENT_OF_ATTACK = 64 * 1024
# A refusal that does not wait for the body comes in milliseconds; reading 400 MB would not
# finish at all, since the client never sends it.
PROMPT_SECONDS = 10.0
SEND = "/api/v1/messages"

_SETUP = """
from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import Role, User
from postroom.company.selectors import company_get
company = company_get()
company.sender_email = "office@acme.example"
company.save()
admin = User.objects.create(username="root", role=Role.ADMINISTRATOR, email="root@acme.example")
_, key = api_key_create(actor=admin, name="ERP", scopes=["send"])
print(key)
"""


class RunningSite:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSite]:
    data_dir: Path = tmp_path_factory.mktemp("limit") / "var"
    env = postroom_env(data_dir, POSTROOM_IMPORT_MAX_BYTES=str(IMPORT_MAX_BYTES))
    key = postroom_shell(env, _SETUP).strip().splitlines()[-1]
    with postroom_running(env, "--no-worker") as process:
        read_until(process, r"Press Ctrl\+C")
        port = int(env["POSTROOM_HTTP_PORT"])
        _wait_listening(port)
        yield RunningSite(port, key)


def _wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _announce(port: int, *, path: str, length: int, sent: bytes) -> tuple[bytes, float]:
    """POST headers announcing `length` bytes, send only `sent`, and read the answer.

    Returns the answer's first bytes and how long it took; fails if none comes in time.
    """
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            if not answer:
                raise AssertionError(
                    f"no answer within {PROMPT_SECONDS} s: the server waits for the whole body"
                ) from None
        except ConnectionResetError:
            pass  # the server closed with our unread bytes in its buffer, after answering
    return answer, time.monotonic() - started


def test_an_unauthenticated_400_mb_post_is_refused_at_once(site: RunningSite) -> None:
    answer, seconds = _announce(
        site.port, path=SEND, length=ATTACK_LENGTH, sent=b"{" + b" " * SENT_OF_ATTACK
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert seconds < PROMPT_SECONDS


def test_one_byte_over_the_limit_is_refused(site: RunningSite) -> None:
    answer, _ = _announce(site.port, path=SEND, length=LIMIT + 1, sent=b"{")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_a_message_with_attachments_filling_the_message_limit_is_accepted(
    site: RunningSite,
) -> None:
    attachment = bytes(range(256)) * (MAX_MESSAGE_BYTES // 256)
    body = json.dumps(
        {
            "from": "company",
            "to": ["bob@example.org"],
            "subject": "The largest attachment there may be",
            "text": "Attached.",
            "attachments": [
                {
                    "filename": "archive.bin",
                    "content_type": "application/octet-stream",
                    "content": base64.b64encode(attachment).decode(),
                }
            ],
        }
    ).encode()
    assert len(body) > base64_size(MAX_MESSAGE_BYTES)  # it is the largest send there is
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=120)
    connection.request(
        "POST",
        SEND,
        body=body,
        headers={"Authorization": f"Bearer {site.key}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    answer = response.read()
    assert response.status == 202, answer[:500]


# --- Django's own check, for servers other than waitress --------------------------------------


@pytest.mark.django_db
def test_the_api_answers_an_oversize_body_with_json_413(client: Client, settings: object) -> None:
    response = client.post(
        SEND,
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(ATTACK_LENGTH),
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert error["field"] is None
    assert "POSTROOM_MAX_REQUEST_BYTES" in error["message"]
    assert f"{ATTACK_LENGTH:,} bytes" in error["message"]


@pytest.mark.django_db
def test_a_page_answers_an_oversize_upload_with_a_413_page(client: Client) -> None:
    client.force_login(user_make("sam"))
    response = client.post(
        reverse("contact_import"),
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(ATTACK_LENGTH),
    )
    assert response.status_code == 413
    page = response.content.decode()
    assert "<h1>Too large</h1>" in page
    assert "send smaller files" in page
    assert 'href="/contacts/"' in page  # the site's navigation: the user is still at home


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wsgiref_site() -> Iterator[int]:
    """The Django application under the standard library's WSGI server, which (unlike
    waitress) hands the socket's body to the application unread."""
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_under_another_wsgi_server_django_refuses_before_reading(wsgiref_site: int) -> None:
    answer, seconds = _announce(wsgiref_site, path=SEND, length=ATTACK_LENGTH, sent=b"{")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 413 "), head
    assert b"application/json" in head
    assert json.loads(body)["error"]["code"] == "too_large"
    assert seconds < PROMPT_SECONDS


# --- the arithmetic --------------------------------------------------------------------------


def test_by_default_the_contact_import_sets_the_limit() -> None:
    limit = request_body_limit(max_message_bytes=25 * 1024 * 1024, import_max_bytes=50 * 1024**2)
    assert limit == 51 * 1024 * 1024


def test_a_larger_message_cap_raises_the_limit_by_its_base64_size() -> None:
    limit = request_body_limit(max_message_bytes=60 * 1024 * 1024, import_max_bytes=50 * 1024**2)
    assert limit == 80 * 1024 * 1024 + 1024 * 1024


def test_base64_pads_the_last_group() -> None:
    assert [base64_size(n) for n in (0, 1, 2, 3, 4)] == [0, 4, 4, 4, 8]


def test_a_limit_that_is_no_size_stops_the_start() -> None:
    with pytest.raises(ImproperlyConfigured, match="POSTROOM_MAX_REQUEST_BYTES=0"):
        request_body_limit_check(0)
