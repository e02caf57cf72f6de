"""Fixtures shared by the whole suite.

The environment is set before Django reads its settings, so tests never touch the
developer's var/ directory or key file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TEST_DATA_DIR = Path(tempfile.mkdtemp(prefix="postroom-test-"))
os.environ["POSTROOM_DATA_DIR"] = str(_TEST_DATA_DIR)
os.environ.setdefault("POSTROOM_SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.pop("POSTROOM_ENV", None)

from tests.support.certs import CertAuthority  # noqa: E402
from tests.support.relay import PostfixRelay, RelayPrerequisiteError  # noqa: E402


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
