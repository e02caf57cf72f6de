"""Fixtures shared by the whole suite.

The environment is set before Django reads its settings, so tests never touch the
developer's var/ directory or key file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_TEST_DATA_DIR = Path(tempfile.mkdtemp(prefix="postroom-test-"))
os.environ["POSTROOM_DATA_DIR"] = str(_TEST_DATA_DIR)
os.environ.setdefault("POSTROOM_SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.pop("POSTROOM_ENV", None)

from tests.support.certs import CertAuthority  # noqa: E402


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """A CA the system does not trust, and a `localhost`/127.0.0.1 certificate it signed."""
    return CertAuthority(tmp_path_factory.mktemp("ca"))
