"""Settings for the test suite: Postroom's own, read after pointing them at a throwaway data
directory, so tests never touch the developer's var/ (its database or its key file)."""

import os
import tempfile

os.environ["POSTROOM_DATA_DIR"] = tempfile.mkdtemp(prefix="postroom-test-")
os.environ.setdefault("POSTROOM_SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.pop("POSTROOM_ENV", None)

from postroom.settings import *  # noqa: E402, F403

# Password hashing at production cost takes seconds per user on a small machine.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Postroom's settings set umask 077 (postroom.core.data_dir). The test process also writes
# files for daemons it starts under other users (the Postfix relay's configuration and SASL
# files), so it goes back to the usual 022; tests/core starts real Postroom processes to
# check the modes of what they create.
os.umask(0o022)

LOGGING["handlers"]["console"]["class"] = "tests.support.logs.CurrentStderrHandler"  # noqa: F405
