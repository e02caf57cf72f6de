"""The steps of a connection check as they are recorded: names, statuses, skips.

postroom.mail.diagnostics runs the check and records each step through a `StepRecorder`; the
report they add up to is postroom.mail.check_report's plain data.
"""

from __future__ import annotations

import time
from typing import Any

from postroom.mail.advice import Diagnosis
from postroom.mail.check_report import CheckStep, StepStatus

STEP_NAMES = {
    "tls_settings": "Custom CA certificate",
    "dns": "Name resolution",
    "tcp": "TCP connect",
    "tls": "TLS handshake",
    "certificate": "TLS certificate",
    "greeting": "Greeting",
    "ehlo": "EHLO",
    "starttls": "STARTTLS",
    "ehlo_tls": "EHLO after STARTTLS",
    "auth": "AUTH",
    "mail_from": "MAIL FROM",
    "test_email": "Test email",
}


class CheckStopped(Exception):
    """A step failed so that the steps after it cannot (or must not) run."""


class StepRecorder:
    """The steps recorded so far; `fail` records a failure and returns what to raise."""

    def __init__(self) -> None:
        self.steps: list[CheckStep] = []

    def add(
        self,
        key: str,
        status: StepStatus,
        summary: str = "",
        *,
        diagnosis: Diagnosis | None = None,
        details: list[str] | None = None,
        started: float | None = None,
        name: str = "",
    ) -> None:
        self.steps.append(
            CheckStep(
                key=key,
                name=name or STEP_NAMES[key],
                status=status,
                summary=summary or (diagnosis.summary if diagnosis else ""),
                details=details or [],
                advice=diagnosis.advice if diagnosis else "",
                code=diagnosis.code if diagnosis else "",
                duration_ms=None
                if started is None
                else round((time.perf_counter() - started) * 1000),
            )
        )

    def fail(self, key: str, diagnosis: Diagnosis, **step: Any) -> CheckStopped:
        """Record a failed step and return the CheckStopped for the caller to raise."""
        self.add(key, StepStatus.FAIL, diagnosis=diagnosis, **step)
        return CheckStopped(diagnosis.code)

    def skip_rest(self, *, senders: list[str], test_recipient: str | None) -> None:
        """Show the MAIL FROM checks and test email that a failed step kept from running."""
        done = {step.name for step in self.steps}
        for sender in senders:
            if f"MAIL FROM {sender}" not in done:
                self.add(
                    "mail_from",
                    StepStatus.SKIP,
                    "Not checked: an earlier step failed.",
                    name=f"MAIL FROM {sender}",
                )
        if test_recipient and not any(step.key == "test_email" for step in self.steps):
            self.add(
                "test_email",
                StepStatus.SKIP,
                "Not sent: an earlier step failed.",
                name=f"Test email to {test_recipient}",
            )
