"""The Sandbox capture pages: captured mail shown without running any of it.

Mail captured here comes from outside the outbox, so administrators read it; who else may
read what is tests/inbox/test_access.py."""

from __future__ import annotations

import re
import smtplib
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from postroom.inbox import services
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from tests.accounts.factories import PASSWORD, admin_make, user_make
from tests.inbox.samples import SCRIPT, multipart_mail, plain_mail

pytestmark = pytest.mark.django_db

CHROMIUM = "/usr/bin/chromium"  # Debian's, see scripts/test-prereqs


def _capture(raw: bytes, *, rcpt_tos: list[str] | None = None) -> CapturedMessage:
    return services.captured_message_create(
        raw=raw,
        mail_from="joerg@example.com",
        rcpt_tos=rcpt_tos or ["bob@example.net"],
        peer="127.0.0.1:40000",
    )


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(user_make("sam"))
    return client


@pytest.fixture
def admin_web(client: Client) -> Client:
    client.force_login(admin_make("ada"))
    return client


class _Elements(HTMLParser):
    """Start tags of a page with their attributes, entity references decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(
    "name_and_args",
    [
        ("inbox", []),
        ("inbox_message", [1]),
        ("inbox_message_raw", [1]),
        ("inbox_attachment", [1, 1]),
        ("inbox_delete_all", []),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(
    client: Client, name_and_args: tuple[str, list[int]]
) -> None:
    name, args = name_and_args
    _capture(multipart_mail())
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_each_message_with_its_summary(admin_web: Client) -> None:
    message = _capture(multipart_mail())
    _capture(plain_mail("Plain hello"))
    response = admin_web.get(reverse("inbox"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Quarterly report ☃" in page
    assert "Jörg Müller &lt;joerg@example.com&gt;" in page
    assert "Bob &lt;bob@example.net&gt;, carol@example.org" in page
    assert "Plain hello" in page
    assert reverse("inbox_message", args=[message.pk]) in page
    assert page.count('aria-label="Has attachments"') == 1
    assert "Delete all" in page  # an administrator's; staff: tests/inbox/test_access.py


def test_the_list_searches_by_address_and_subject(admin_web: Client) -> None:
    _capture(multipart_mail())
    _capture(plain_mail("Plain hello", to="dave@example.org"))
    page = admin_web.get(reverse("inbox"), {"q": "dave@"}).content.decode()
    assert "Plain hello" in page
    assert "Quarterly report" not in page


def test_a_message_page_shows_the_html_part_only_inside_a_sandboxed_iframe(
    admin_web: Client,
) -> None:
    message = _capture(multipart_mail())
    response = admin_web.get(reverse("inbox_message", args=[message.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    (iframe,) = _elements(page).find("iframe")
    assert iframe["sandbox"] == "", "an empty sandbox: no scripts, no same origin, no forms"
    assert SCRIPT in (iframe["srcdoc"] or ""), "the HTML part is the iframe's document"
    # The mail's script never reaches the page as markup, only escaped.
    assert SCRIPT not in page
    assert "alert(" not in "".join(
        attrs.get("src") or "" for attrs in _elements(page).find("script")
    )
    for script in _elements(page).find("script"):
        assert (script.get("src") or "").startswith("/static/"), "only Postroom's own scripts"
    assert "remote images are blocked" in page


def test_the_message_page_forbids_remote_images_and_foreign_scripts(admin_web: Client) -> None:
    message = _capture(multipart_mail())
    response = admin_web.get(reverse("inbox_message", args=[message.pk]))
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response["Content-Security-Policy"].split("; ")
    }
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_the_message_page_shows_text_headers_source_and_attachments(
    admin_web: Client,
) -> None:
    message = _capture(multipart_mail())
    page = admin_web.get(reverse("inbox_message", args=[message.pk])).content.decode()
    assert "the report is attached." in page
    assert "<summary>Show source</summary>" in page
    assert "Content-Transfer-Encoding" in page  # in the source and the headers table
    assert "&lt;report-1@example.com&gt;" in page
    assert reverse("inbox_attachment", args=[message.pk, 1]) in page
    assert reverse("inbox_attachment", args=[message.pk, 2]) in page
    assert "résumé Q3.pdf" in page
    assert reverse("inbox_message_raw", args=[message.pk]) in page


def test_an_attachment_downloads_as_an_opaque_file(admin_web: Client) -> None:
    message = _capture(multipart_mail())
    response = admin_web.get(reverse("inbox_attachment", args=[message.pk, 1]))
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 fake"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''r%C3%A9sum%C3%A9%20Q3.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_html_attachment_is_never_served_as_html(admin_web: Client) -> None:
    message = _capture(multipart_mail())
    response = admin_web.get(reverse("inbox_attachment", args=[message.pk, 2]))
    assert response.content == f"<html>{SCRIPT}</html>".encode()
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="evil.html"'
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_raw_download_is_the_exact_bytes(admin_web: Client) -> None:
    raw = multipart_mail()
    message = _capture(raw)
    response = admin_web.get(reverse("inbox_message_raw", args=[message.pk]))
    assert response.content == raw
    assert response["Content-Disposition"] == f'attachment; filename="captured-{message.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_missing_messages_and_attachments_are_404(admin_web: Client) -> None:
    message = _capture(plain_mail())
    assert admin_web.get(reverse("inbox_message", args=[message.pk + 1])).status_code == 404
    assert admin_web.get(reverse("inbox_attachment", args=[message.pk, 1])).status_code == 404


def test_staff_users_cannot_delete_captured_mail(staff_client: Client) -> None:
    _capture(plain_mail())
    assert staff_client.get(reverse("inbox_delete_all")).status_code == 403
    assert staff_client.post(reverse("inbox_delete_all")).status_code == 403
    assert CapturedMessage.objects.count() == 1


def test_an_administrator_confirms_then_deletes_all(client: Client) -> None:
    client.force_login(admin_make())
    _capture(plain_mail())
    _capture(plain_mail())
    assert "Delete all" in client.get(reverse("inbox")).content.decode()
    confirm = client.get(reverse("inbox_delete_all"))
    assert "Delete 2 messages" in confirm.content.decode()
    assert CapturedMessage.objects.count() == 2, "asking is not deleting"
    response = client.post(reverse("inbox_delete_all"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("inbox")
    assert "Deleted 2 captured messages." in response.content.decode()
    assert not CapturedMessage.objects.exists()


def test_deleting_all_needs_the_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_make())
    _capture(plain_mail())
    client.get(reverse("inbox_delete_all"))  # sets the CSRF cookie, as a browser would
    assert client.post(reverse("inbox_delete_all")).status_code == 403
    assert CapturedMessage.objects.count() == 1
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("inbox_delete_all"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert not CapturedMessage.objects.exists()


def test_the_sandbox_banner_says_nothing_leaves_this_machine() -> None:
    banner = render_to_string("web/inbox/_sandbox_banner.html")
    text = " ".join(_text(banner).split())
    assert (
        "Sandbox mode: mail is captured in the Sandbox capture, nothing leaves this machine."
        in (text)
    )
    assert reverse("inbox") in banner


def _text(html: str) -> str:
    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.chunks: list[str] = []

        def handle_data(self, data: str) -> None:
            self.chunks.append(data)

    parser = Text()
    parser.feed(html)
    return "".join(parser.chunks)


@pytest.mark.django_db(transaction=True)
def test_mail_sent_to_the_capture_server_appears_in_the_inbox(client: Client) -> None:
    client.force_login(admin_make("ada"))
    raw = multipart_mail()
    with (
        CaptureServer("127.0.0.1", 0) as server,
        smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp,
    ):
        smtp.sendmail("joerg@example.com", ["bob@example.net"], raw)
    message = CapturedMessage.objects.get()
    assert "Quarterly report ☃" in client.get(reverse("inbox")).content.decode()
    download = client.get(reverse("inbox_message_raw", args=[message.pk]))
    assert download.content == raw


class _Tracker:
    """A real HTTP server on loopback that records every request: a sender's tracking pixel."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Tracker:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_real_browser_the_mail_runs_no_script_and_loads_nothing_remote(
    live_server: LiveServer,
) -> None:
    admin_make("root")
    with _Tracker() as tracker:
        html = (
            '<p id="hello">Hello from the mail</p>'
            f'<img src="{tracker.url}/pixel.gif">'
            f'<link rel="stylesheet" href="{tracker.url}/style.css">'
            f'<div style="background: url({tracker.url}/background.png)">styled</div>'
            f'<script>fetch("{tracker.url}/script"); parent.document.title = "pwned";</script>'
            f'<img src="x" onerror="fetch(\'{tracker.url}/onerror\')">'
        )
        message = _capture(
            b"From: a@example.com\r\nSubject: tracked\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n"
        )
        # The ORM is not touched below: Playwright's sync API runs an event loop here.
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                page = browser.new_page()
                page.goto(f"{live_server.url}{reverse('login')}")
                page.fill("input[name=username]", "root")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit], input[type=submit]")
                page.wait_for_load_state()
                page.goto(f"{live_server.url}{reverse('inbox_message', args=[message.pk])}")
                frame = page.frame_locator("iframe.mail-html")
                assert frame.locator("#hello").inner_text(timeout=5000) == "Hello from the mail"
                page.wait_for_timeout(500)  # time for anything that would load to load
                title = page.title()
            finally:
                browser.close()
        assert tracker.paths == [], "the mail fetched nothing, ran no script"
        assert title != "pwned"


def _menu_names(client: Client) -> list[str]:
    html = client.get("/").content.decode()
    nav = html[html.index('class="nav"') : html.index("</nav>")]
    return [name.strip() for name in re.findall(r">([^<>]+)</a>", nav)]


def test_the_capture_is_in_the_menu_while_mail_is_captured_or_held(admin_web: Client) -> None:
    from postroom.company.selectors import company_get

    assert "Sandbox capture" in _menu_names(admin_web)  # no SMTP server yet: mail is captured
    company = company_get()
    company.smtp_host, company.smtp_port = "smtp.example.com", 587
    company.save()
    assert "Sandbox capture" not in _menu_names(admin_web), "sandbox off and empty: hidden"
    _capture(plain_mail())
    assert "Sandbox capture" in _menu_names(admin_web), "it still holds mail"
