"""The bounce mailbox's fixtures: a real Dovecot on loopback (tests/support/dovecot.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.certs import CertAuthority
from tests.support.dovecot import DovecotServer, dovecot_session


@pytest.fixture(scope="session")
def dovecot(test_ca: CertAuthority) -> Iterator[DovecotServer]:
    """A real Dovecot with IMAP and POP3, plain and TLS; one per test session (per xdist
    worker). Each test makes its own user (`dovecot.user_add()`), so it starts empty. Fails,
    never skips, when Dovecot is missing."""
    yield from dovecot_session(test_ca)
