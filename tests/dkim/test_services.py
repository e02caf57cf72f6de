"""DKIM keys: creation, the DNS check against a real DNS server, signing only once checked,
rotation."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_decrypt
from postroom.dkim.models import Algorithm, CheckResult, DkimKey, KeyState
from postroom.dkim.services import (
    check_message,
    dkim_key_check,
    dkim_key_create,
    dkim_key_retire,
    dkim_key_start_signing,
)
from postroom.dkim.signing import dkim_signer_load
from tests.dkim.support import publish
from tests.support.dns_server import DnsServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> User:
    return User.objects.create(username="ada", role=Role.ADMINISTRATOR)


def test_a_new_key_waits_for_dns_and_its_private_key_is_stored_encrypted(admin: User) -> None:
    key = dkim_key_create(actor=admin, domain="Example.COM.")
    stored = DkimKey.objects.get(pk=key.pk)
    assert (stored.domain, stored.algorithm, stored.state) == (
        "example.com",
        Algorithm.RSA_SHA256,
        KeyState.WAITING,
    )
    assert stored.selector.startswith("postroom")
    private = secret_decrypt(stored.private_key_encrypted)
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert "PRIVATE KEY" not in stored.private_key_encrypted
    assert stored.public_key not in stored.private_key_encrypted
    assert stored.record_value == f"v=DKIM1; k=rsa; p={stored.public_key}"
    entry = AuditEntry.objects.get(action="dkim.key.created")
    assert entry.actor_name == "ada"
    assert private not in str(entry.changes)
    assert entry.changes["Private key"] == {"changed": True, "secret": "set"}


def test_a_second_key_of_the_month_gets_its_own_selector(admin: User) -> None:
    first = dkim_key_create(actor=admin, domain="example.com")
    second = dkim_key_create(actor=admin, domain="example.com")
    ed = dkim_key_create(actor=admin, domain="example.com", algorithm=Algorithm.ED25519_SHA256)
    assert second.selector == f"{first.selector}-2"
    assert ed.selector == f"{first.selector}ed"


def test_bad_input_names_its_field(admin: User) -> None:
    cases = [
        ({"domain": "not a domain"}, "domain"),
        ({"domain": "example.com", "selector": "bad_selector!"}, "selector"),
        ({"domain": "example.com", "algorithm": "dsa"}, "algorithm"),
    ]
    for values, field in cases:
        with pytest.raises(ValidationError) as caught:
            dkim_key_create(actor=admin, **values)
        assert caught.value.field == field
    dkim_key_create(actor=admin, domain="example.com", selector="s1")
    with pytest.raises(ValidationError, match="already has a key with the selector s1"):
        dkim_key_create(actor=admin, domain="example.com", selector="S1")
    assert DkimKey.objects.count() == 1


def test_a_missing_record_says_what_to_publish(admin: User, dns_server: DnsServer) -> None:
    key = dkim_key_check(key=dkim_key_create(actor=admin, domain="example.com", selector="s1"))
    assert key.check_result == CheckResult.MISSING
    assert key.state == KeyState.WAITING
    assert key.checked_at is not None
    assert check_message(key) == (
        "No TXT record at s1._domainkey.example.com yet: publish the record above; DNS changes "
        "can take up to an hour."
    )


def test_another_key_in_dns_is_a_mismatch(admin: User, dns_server: DnsServer) -> None:
    key = dkim_key_create(actor=admin, domain="example.com", selector="s1")
    stranger = dkim_key_create(actor=admin, domain="example.org", selector="s1")
    dns_server.add(key.record_name, "TXT", stranger.record_value)
    key = dkim_key_check(key=key)
    assert key.check_result == CheckResult.MISMATCH
    assert "holds another public key" in check_message(key)
    assert key.state == KeyState.WAITING


def test_a_dns_failure_is_told_from_a_missing_record(admin: User, dns_server: DnsServer) -> None:
    key = dkim_key_create(actor=admin, domain="example.com", selector="s1")
    dns_server.fail(key.record_name)
    key = dkim_key_check(key=key)
    assert key.check_result == CheckResult.FAILED
    assert check_message(key).startswith("The DNS did not answer for s1._domainkey.example.com")


def test_a_published_record_checks_and_only_then_signing_may_start(
    admin: User, dns_server: DnsServer
) -> None:
    key = dkim_key_create(actor=admin, domain="example.com", selector="s1")
    with pytest.raises(ValidationError, match="Not signing yet. No TXT record at s1._domainkey"):
        dkim_key_start_signing(actor=admin, key=key)
    assert DkimKey.objects.get(pk=key.pk).state == KeyState.WAITING
    assert dkim_signer_load().domains == frozenset()

    publish(dns_server, key)
    key = dkim_key_check(key=key)
    assert (key.check_result, key.state) == (CheckResult.OK, KeyState.CHECKED)
    assert check_message(key) == (
        "The TXT record at s1._domainkey.example.com is published and matches this key."
    )
    key = dkim_key_start_signing(actor=admin, key=key)
    assert key.state == KeyState.SIGNING and key.signing_since is not None
    assert dkim_signer_load().domains == frozenset({"example.com"})
    assert AuditEntry.objects.filter(action="dkim.key.signing").count() == 1


def test_starting_refuses_when_the_record_went_away_after_a_check(
    admin: User, dns_server: DnsServer
) -> None:
    key = dkim_key_create(actor=admin, domain="example.com", selector="s1")
    publish(dns_server, key)
    dkim_key_check(key=key)
    dns_server.remove(key.record_name)
    with pytest.raises(ValidationError, match="No TXT record"):
        dkim_key_start_signing(actor=admin, key=key)
    assert DkimKey.objects.get(pk=key.pk).state == KeyState.WAITING


def test_rotation_keeps_the_old_key_signing_until_the_new_one_starts(
    admin: User, dns_server: DnsServer
) -> None:
    old = dkim_key_create(actor=admin, domain="example.com", selector="old")
    publish(dns_server, old)
    dkim_key_start_signing(actor=admin, key=old)
    ed = dkim_key_create(
        actor=admin, domain="example.com", selector="ed", algorithm="ed25519-sha256"
    )
    publish(dns_server, ed)
    dkim_key_start_signing(actor=admin, key=ed)

    new = dkim_key_create(actor=admin, domain="example.com", selector="new")
    publish(dns_server, new)
    dkim_key_check(key=new)
    assert DkimKey.objects.get(pk=old.pk).state == KeyState.SIGNING
    signer = dkim_signer_load()
    assert [key.selector for key in signer.keys["example.com"]] == [b"ed", b"old"]

    dkim_key_start_signing(actor=admin, key=new)
    states = dict(DkimKey.objects.values_list("selector", "state"))
    assert states == {"old": KeyState.RETIRED, "new": KeyState.SIGNING, "ed": KeyState.SIGNING}
    signer = dkim_signer_load()
    assert [key.selector for key in signer.keys["example.com"]] == [b"ed", b"new"]
    entry = AuditEntry.objects.filter(action="dkim.key.signing").latest("pk")
    assert entry.changes == {"Signing with": {"from": "old", "to": "new"}}


def test_a_retired_key_stops_signing_and_cannot_start_again(
    admin: User, dns_server: DnsServer
) -> None:
    key = dkim_key_create(actor=admin, domain="example.com", selector="s1")
    publish(dns_server, key)
    dkim_key_start_signing(actor=admin, key=key)
    key = dkim_key_retire(actor=admin, key=key)
    assert key.state == KeyState.RETIRED and key.retired_at is not None
    assert dkim_signer_load().domains == frozenset()
    with pytest.raises(ValidationError, match="retired and cannot sign again"):
        dkim_key_start_signing(actor=admin, key=key)
