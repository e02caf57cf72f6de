"""Webhooks cannot be aimed at Postroom's own machine or network (server-side request forgery).

Each attack of issue 7 §5 is made for real against a receiver on loopback: at save time (the
service and the page refuse the URL) and at delivery time (an endpoint saved before the check
existed, or a name that answers differently later, is never posted to).
"""

from __future__ import annotations

import ssl

import pytest
from django.test import Client
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.models import AuditEntry
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_encrypt
from postroom.webhooks import signing
from postroom.webhooks.models import Delivery, DeliveryStatus, Endpoint
from postroom.webhooks.services import endpoint_create, endpoint_send_test, endpoint_update
from tests.support.certs import CertAuthority
from tests.webhooks.conftest import ScriptedResolver, dispatch_due
from tests.webhooks.receiver import Answer, Receiver, running_receiver

pytestmark = pytest.mark.django_db

# A public address, for names a scripted resolver answers: it is only ever handed to the
# check (or to a proxy by name), never connected to. Tests reach nothing but loopback.
PUBLIC = "93.184.215.14"

# The attacks of the issue, as URLs on the receiver's port: each reaches this machine.
INTERNAL_URLS = {
    "loopback": ("http://127.0.0.1:{port}/internal", "127.0.0.1"),
    "cloud metadata": ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    "IPv6 loopback": ("http://[::1]:{port}/internal", "::1"),
    "this host": ("http://0.0.0.0:{port}/internal", "0.0.0.0"),
    "a name for loopback": ("http://localhost:{port}/internal", "127.0.0.1"),
}


def stored_endpoint(url: str) -> Endpoint:
    """An endpoint row as a Postroom without the check saved it (or as a database edit would)."""
    return Endpoint.objects.create(
        url=url,
        secret_encrypted=secret_encrypt(signing.secret_generate()),
        created_at=timezone.now(),
    )


@pytest.mark.parametrize("attack", INTERNAL_URLS, ids=list(INTERNAL_URLS))
def test_an_internal_url_is_refused_when_saved(
    attack: str, admin: User, receiver: Receiver
) -> None:
    template, address = INTERNAL_URLS[attack]
    with pytest.raises(ValidationError) as refused:
        endpoint_create(actor=admin, url=template.format(port=receiver.port))
    assert refused.value.field == "url"
    assert address in refused.value.message  # names the address it found
    assert "Allow an internal address" in refused.value.message  # and what to do
    assert not Endpoint.objects.exists()


# At delivery time without the metadata address: were the check ever broken, the test must
# not send a request off this machine (this sandbox's 169.254.169.254 does answer).
POSTED_ATTACKS = [attack for attack in INTERNAL_URLS if attack != "cloud metadata"]


@pytest.mark.parametrize("attack", POSTED_ATTACKS)
def test_a_stored_internal_url_is_never_posted_to(
    attack: str, admin: User, receiver: Receiver
) -> None:
    template, address = INTERNAL_URLS[attack]
    endpoint = stored_endpoint(template.format(port=receiver.port))
    endpoint_send_test(actor=admin, endpoint=endpoint)

    assert dispatch_due() == [DeliveryStatus.PENDING]
    assert receiver.requests == []
    delivery = Delivery.objects.get()
    assert address in delivery.last_error
    assert "not an address on the public internet" in delivery.last_error or (
        "never posts webhooks there" in delivery.last_error
    )
    assert delivery.last_response == ""


# --- the administrator's setting -----------------------------------------------------------


def test_an_internal_receiver_works_once_an_administrator_allows_it(
    admin: User, receiver: Receiver
) -> None:
    endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    audit = AuditEntry.objects.get(action="webhook.endpoint.created")
    assert audit.changes["Allow an internal address"] == {"to": True}
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hooks",
        "http://0.0.0.0:8080/hooks",
        "http://[::ffff:169.254.169.254]/hooks",
        "http://224.0.0.1/hooks",
    ],
)
def test_metadata_and_unusable_addresses_stay_refused_when_internal_ones_are_allowed(
    url: str, admin: User
) -> None:
    with pytest.raises(ValidationError, match="never posts webhooks there"):
        endpoint_create(actor=admin, url=url, is_internal_allowed=True)


def test_turning_the_setting_off_refuses_the_internal_url(admin: User, receiver: Receiver) -> None:
    endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    with pytest.raises(ValidationError, match="127.0.0.1 is a loopback address"):
        endpoint_update(
            actor=admin,
            endpoint=endpoint,
            url=receiver.url,
            description="",
            all_events=True,
            event_types=[],
            is_active=True,
            is_internal_allowed=False,
        )
    endpoint.refresh_from_db()
    assert endpoint.is_internal_allowed


def test_changing_the_setting_is_audited(admin: User) -> None:
    resolver = ScriptedResolver([PUBLIC])
    endpoint, _ = endpoint_create(actor=admin, url="https://erp.example/in", resolve=resolver)
    endpoint_update(
        actor=admin,
        endpoint=endpoint,
        url=endpoint.url,
        description="",
        all_events=True,
        event_types=[],
        is_active=True,
        is_internal_allowed=True,
        resolve=resolver,
    )
    audit = AuditEntry.objects.get(action="webhook.endpoint.updated")
    assert audit.changes == {"Allow an internal address": {"from": False, "to": True}}


def test_the_page_refuses_an_internal_url_beside_the_field_and_offers_the_setting(
    admin: User, receiver: Receiver
) -> None:
    client = Client()
    client.force_login(admin)
    assert "Allow an internal address" in client.get("/webhooks/new/").content.decode()

    form = {"url": receiver.url, "all_events": "on"}
    html = client.post("/webhooks/new/", form).content.decode()
    assert "127.0.0.1 is a loopback address (this machine)" in html
    assert html.count('class="field-error"') == 1
    assert not Endpoint.objects.exists()

    client.post("/webhooks/new/", {**form, "is_internal_allowed": "on"})
    endpoint = Endpoint.objects.get()
    assert endpoint.is_internal_allowed
    detail = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "Internal address" in detail and "allowed by an administrator" in detail
    assert "checked" in client.get(f"/webhooks/{endpoint.pk}/edit/").content.decode()


# --- names that change their answer (DNS rebinding) ----------------------------------------


def test_a_name_that_turns_to_loopback_after_it_was_saved_is_refused_when_posted(
    admin: User, receiver: Receiver
) -> None:
    url = receiver.url_for("hooks.rebind.example")
    endpoint, _ = endpoint_create(actor=admin, url=url, resolve=ScriptedResolver([PUBLIC]))
    endpoint_send_test(actor=admin, endpoint=endpoint)

    assert dispatch_due(resolve=ScriptedResolver(["127.0.0.1"])) == [DeliveryStatus.PENDING]
    assert receiver.requests == []
    assert "hooks.rebind.example resolves to 127.0.0.1" in Delivery.objects.get().last_error


def test_a_name_with_one_internal_answer_among_public_ones_is_refused(admin: User) -> None:
    with pytest.raises(ValidationError, match="resolves to 10.0.0.7, a private network address"):
        endpoint_create(
            actor=admin,
            url="https://hooks.mixed.example/in",
            resolve=ScriptedResolver([PUBLIC, "10.0.0.7"]),
        )


def test_the_connection_goes_to_the_address_that_was_checked_not_to_a_second_lookup(
    admin: User,
) -> None:
    """Two receivers on one port: 127.0.0.2, the scripted DNS's first answer, and 127.0.0.1,
    its answer to any later question and what the system resolver says for `localhost`.
    Whoever looks the name up again to connect (httpx on its own would) reaches 127.0.0.1.

    The endpoint allows internal addresses only because loopback is all a test may reach:
    which address is checked and which one is connected to does not depend on the setting.
    """
    with (
        running_receiver() as second_lookup,
        running_receiver(address="127.0.0.2", port=second_lookup.port) as checked,
    ):
        url = checked.url_for("localhost")
        endpoint, _ = endpoint_create(actor=admin, url=url, is_internal_allowed=True)
        endpoint_send_test(actor=admin, endpoint=endpoint)
        resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.1"])
        assert dispatch_due(resolve=resolver) == [DeliveryStatus.SUCCEEDED]

    assert second_lookup.requests == []
    [request] = checked.requests
    assert request.headers["host"] == f"localhost:{checked.port}"  # the name, not the address
    assert resolver.questions == [("localhost", checked.port)]  # looked up once


def tls_context(ca: CertAuthority, name: str) -> ssl.SSLContext:
    issued = ca.issue((name,), stem=name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert_path, issued.key_path)
    return context


def test_https_to_a_checked_address_keeps_the_name_for_sni_host_and_certificate(
    admin: User, test_ca: CertAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.cert_path))  # as docs/webhooks.md says
    resolver = ScriptedResolver(["127.0.0.1"])
    with running_receiver(tls=tls_context(test_ca, "hooks.example")) as receiver:
        endpoint, _ = endpoint_create(
            actor=admin,
            url=receiver.url_for("hooks.example"),
            is_internal_allowed=True,
            resolve=resolver,
        )
        endpoint_send_test(actor=admin, endpoint=endpoint)
        assert dispatch_due(resolve=resolver) == [DeliveryStatus.SUCCEEDED]
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.example:{receiver.port}"
    assert receiver.server_names == ["hooks.example"]


def test_https_to_a_checked_address_still_refuses_a_certificate_for_another_name(
    admin: User, test_ca: CertAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.cert_path))
    resolver = ScriptedResolver(["127.0.0.1"])
    with running_receiver(tls=tls_context(test_ca, "other.example")) as receiver:
        endpoint, _ = endpoint_create(
            actor=admin,
            url=receiver.url_for("hooks.example"),
            is_internal_allowed=True,
            resolve=resolver,
        )
        endpoint_send_test(actor=admin, endpoint=endpoint)
        assert dispatch_due(resolve=resolver) == [DeliveryStatus.PENDING]
    assert receiver.requests == []
    assert "certificate" in Delivery.objects.get().last_error.lower()


def test_a_redirect_to_the_metadata_service_is_not_followed(
    admin: User, receiver: Receiver
) -> None:
    receiver.script(Answer(status=302, headers={"Location": "http://169.254.169.254/latest/"}))
    endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due() == [DeliveryStatus.PENDING]
    assert len(receiver.requests) == 1
    assert "does not follow redirects" in Delivery.objects.get().last_error


# --- through a proxy -----------------------------------------------------------------------


@pytest.fixture
def proxy(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The receiver as the environment's HTTP proxy: it answers itself and records the
    absolute URL each request names."""
    for name in ("no_proxy", "all_proxy", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.port}")
    return receiver


def test_through_a_proxy_the_name_is_checked_then_handed_to_the_proxy(
    admin: User, proxy: Receiver
) -> None:
    resolver = ScriptedResolver([PUBLIC])
    endpoint, _ = endpoint_create(actor=admin, url="http://hooks.example/in", resolve=resolver)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due(resolve=resolver) == [DeliveryStatus.SUCCEEDED]
    [request] = proxy.requests
    assert request.path == "http://hooks.example/in"
    assert resolver.questions == [("hooks.example", 80)] * 2  # saved, then posted


def test_through_a_proxy_a_name_that_is_internal_never_reaches_the_proxy(
    admin: User, proxy: Receiver
) -> None:
    resolver = ScriptedResolver([PUBLIC], ["127.0.0.1"])
    endpoint, _ = endpoint_create(actor=admin, url="http://hooks.example/in", resolve=resolver)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due(resolve=resolver) == [DeliveryStatus.PENDING]
    assert proxy.requests == []
    assert "hooks.example resolves to 127.0.0.1" in Delivery.objects.get().last_error


def test_no_proxy_sends_the_request_straight_to_the_checked_address(
    admin: User, proxy: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "hooks.example")
    resolver = ScriptedResolver(["127.0.0.1"])
    url = proxy.url_for("hooks.example")
    endpoint, _ = endpoint_create(actor=admin, url=url, is_internal_allowed=True, resolve=resolver)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due(resolve=resolver) == [DeliveryStatus.SUCCEEDED]
    [request] = proxy.requests
    assert request.path == "/hooks/postroom"  # origin form: not asked as a proxy
