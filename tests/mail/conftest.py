"""Fixtures for the mail layer's tests: scripted aiosmtpd servers (tests/support/smtpd.py)."""

from tests.support.smtpd import scripted_smtpd  # noqa: F401  (a fixture, found by pytest here)
