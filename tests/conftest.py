"""Fixtures shared by the whole suite.

Django's settings for tests are tests/settings.py: a throwaway data directory, so tests
never touch the developer's var/ directory or key file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from postroom.inbox.server import CaptureServer
from tests.support.certs import CertAuthority
from tests.support.dns_server import DnsServer
from tests.support.relay import PostfixRelay, RelayPrerequisiteError


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """A CA the system does not trust, and a `localhost`/127.0.0.1 certificate it signed."""
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def relay(test_ca: CertAuthority) -> Iterator[PostfixRelay]:
    """A real Postfix relay on 127.0.0.1, one per test session (per xdist worker).

    See `tests/support/relay.py` for its four ports and what each answers. The mailbox is
    shared by every test of the session: ask for `relay_mailbox` instead to start empty.
    It fails (never skips) when Postfix is missing or the tests don't run as root.
    """
    instance = PostfixRelay(ca=test_ca)
    try:
        instance.start()
    except RelayPrerequisiteError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:  # failed outside the except block, so pytest shows only this message
        pytest.fail(missing, pytrace=False)
    yield instance
    instance.stop()


@pytest.fixture
def relay_mailbox(relay: PostfixRelay) -> PostfixRelay:
    """The session's relay with an empty Maildir (mail still in flight lands first)."""
    relay.clear()
    return relay


@pytest.fixture
def capture_server(settings: Any) -> Iterator[CaptureServer]:
    """The Sandbox capture on a free port: where the outbox delivers in sandbox mode or while
    no SMTP server is set."""
    server = CaptureServer("127.0.0.1", 0)
    server.start()
    settings.POSTROOM_CAPTURE_PORT = server.port
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dns_server_session() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _dns_on_loopback(dns_server_session: DnsServer, settings: Any) -> None:
    """Every test's DNS lookups go to the loopback DNS server, empty at the start: no test
    reaches the internet's DNS, even one that does not ask for `dns_server` (`postroom
    doctor` checks the domains too)."""
    dns_server_session.clear()
    settings.POSTROOM_DNS_SERVERS = [dns_server_session.address]


@pytest.fixture
def dns_server(dns_server_session: DnsServer) -> DnsServer:
    """The DNS server on loopback that Postroom's lookups go to (POSTROOM_DNS_SERVERS), with
    no records: each test adds the records its case needs."""
    return dns_server_session
