"""The result of a connection check: its steps, each with a status and plain-words advice.

Plain data, shared by the web page, `postroom doctor` (text and JSON) and the API.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from postroom.mail.config import TlsPolicy

TLS_POLICY_LABELS = {
    TlsPolicy.IMPLICIT: "implicit TLS",
    TlsPolicy.STARTTLS_REQUIRED: "STARTTLS required",
    TlsPolicy.STARTTLS_OPPORTUNISTIC: "STARTTLS when offered",
    TlsPolicy.NONE: "no TLS",
}
# Shorter secrets could match ordinary words of a transcript by chance; no server echoes one.
_MIN_REDACTED_SECRET = 4
_HIDDEN = "••••••"
# What a server says is shown up to this many characters. A mail server's reply, even a
# provider's multi-line explanation, makes its point well within it; the check connects to
# any host and port typed in, and a service that is not a mail server may send pages of its
# own text, which Check connection must not copy out whole.
SERVER_TEXT_SHOWN = 200


def server_text_excerpt(text: str) -> str:
    """Server-provided `text` as a report shows it: its start, marked when cut, printable.

    Control characters become "�": an ESC sequence in a banner would otherwise drive the
    terminal `postroom doctor` prints to.
    """
    printable = "".join(char if char.isprintable() else "\ufffd" for char in text)
    if len(printable) <= SERVER_TEXT_SHOWN:
        return printable
    hidden = len(printable) - SERVER_TEXT_SHOWN
    return (
        f"{printable[:SERVER_TEXT_SHOWN]} […{hidden:,} more characters from the server not shown]"
    )


def reply_text(code: int | None, message: str) -> str:
    """One line for a transcript: multi-line replies joined with " / ", cut to an excerpt."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    shown = server_text_excerpt(" / ".join(lines))
    return f"{code} {shown}".strip() if code is not None else shown


class StepStatus(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class CheckStep:
    key: str  # stable: "dns", "tcp", "tls", "greeting", "ehlo", "starttls", "certificate", ...
    name: str  # for people: "Name resolution", "MAIL FROM alice@example.com"
    status: StepStatus
    summary: str
    details: list[str] = field(default_factory=list)
    advice: str = ""
    code: str = ""  # the diagnosis code when the step failed or warns
    duration_ms: int | None = None  # None: measured together with the step before


@dataclass
class CheckReport:
    host: str
    port: int
    tls: TlsPolicy
    steps: list[CheckStep]
    checked_at: dt.datetime
    test_recipient: str | None = None

    @property
    def is_ok(self) -> bool:
        return not any(step.status is StepStatus.FAIL for step in self.steps)

    @property
    def has_warnings(self) -> bool:
        return any(step.status is StepStatus.WARN for step in self.steps)

    @property
    def tls_label(self) -> str:
        return TLS_POLICY_LABELS[self.tls]

    @property
    def codes(self) -> list[str]:
        return [step.code for step in self.steps if step.code]

    def step(self, key: str) -> CheckStep | None:
        return next((step for step in self.steps if step.key == key), None)

    def steps_for(self, key: str) -> list[CheckStep]:
        return [step for step in self.steps if step.key == key]

    def transcript(self) -> str:
        """Every word of the report, for logs and for tests that search it."""
        lines = [f"{self.host}:{self.port} ({self.tls_label})"]
        for step in self.steps:
            lines += [f"[{step.status}] {step.name}: {step.summary}", *step.details, step.advice]
        return "\n".join(line for line in lines if line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "tls": self.tls.value,
            "checked_at": self.checked_at.isoformat(),
            "test_recipient": self.test_recipient,
            "ok": self.is_ok,
            "steps": [asdict(step) for step in self.steps],
        }

    def redact(self, secret: str) -> CheckReport:
        """Hide `secret` wherever it would appear: a belt to the braces of never adding it."""
        if len(secret) >= _MIN_REDACTED_SECRET:
            for step in self.steps:
                step.summary = step.summary.replace(secret, _HIDDEN)
                step.advice = step.advice.replace(secret, _HIDDEN)
                step.details = [line.replace(secret, _HIDDEN) for line in step.details]
        return self
