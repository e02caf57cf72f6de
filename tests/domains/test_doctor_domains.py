"""`postroom doctor --domains` (and the domain part of `--json`) against the loopback DNS server."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.domains.support import DOMAIN, HELO, RELAY_ADDRESS, all_good
from tests.support.dns_server import DnsServer

pytestmark = pytest.mark.django_db


def doctor(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_doctor_domains_says_all_passes_and_exits_0(dns_server: DnsServer) -> None:
    all_good(dns_server)
    out, error = doctor("--domains")
    assert error is None, out
    assert f"{DOMAIN}: Mail from Postroom will pass SPF, DKIM and DMARC." in out
    assert f"[ OK ] SPF allows the relay: The relay relay.example.net ({RELAY_ADDRESS})" in out
    assert f"[ OK ] HELO name {HELO}:" in out
    assert "Publish:" not in out


def test_doctor_domains_prints_the_record_to_publish_and_exits_1(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(f"_dmarc.{DOMAIN}")
    out, error = doctor("--domains")
    assert error is not None and error.returncode == 1
    assert "1 domain problem(s) found." in str(error)
    assert "[FAIL] DMARC: example.com has no DMARC record." in out
    assert "Publish: _dmarc.example.com TXT v=DMARC1; p=none; rua=mailto:info@example.com" in out


def test_doctor_domains_json_lists_each_finding(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.fail(f"_dmarc.{DOMAIN}")
    out, error = doctor("--domains", "--json")
    assert error is None, out  # "could not check" is not a problem: nothing is known missing
    data = json.loads(out)["domains"]
    [domain] = data["domains"]
    assert domain["domain"] == DOMAIN
    dmarc = next(item for item in domain["findings"] if item["key"] == "dmarc")
    assert dmarc["status"] == "could not check" and dmarc["record"] is None
    assert data["helo"]["status"] == "ok"
