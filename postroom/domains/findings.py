"""What the domain check found: one `Finding` per thing looked at, grouped per domain.

Frozen dataclasses, as everywhere a result crosses a seam: the page, `postroom doctor` and its
JSON read the same objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"
    # The DNS did not answer (timeout, SERVFAIL): nothing is known, so nothing is "missing".
    UNKNOWN = "could not check"


@dataclass(frozen=True)
class Record:
    """A DNS record to publish (or change to), exactly as it goes into the zone."""

    name: str
    type: str
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "value": self.value}


@dataclass(frozen=True)
class Finding:
    key: str  # stable: "spf", "spf_relay", "spf_lookups", "dkim", "dmarc", "alignment", ...
    title: str  # "SPF", "DKIM selector1", ...
    status: Status
    message: str  # what is wrong and why it matters, in plain words
    record: Record | None = None  # what to publish, when something must be published
    found: tuple[str, ...] = ()  # the records as they are published now

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status.value,
            "message": self.message,
            "record": self.record.as_dict() if self.record else None,
            "found": list(self.found),
        }


@dataclass(frozen=True)
class DomainReport:
    domain: str
    summary: str  # "Mail from Postroom will pass SPF, DKIM and DMARC" or what fails
    status: Status  # the worst finding's
    findings: tuple[Finding, ...] = field(default=())

    @property
    def records(self) -> list[Record]:
        return [finding.record for finding in self.findings if finding.record is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status.value,
            "summary": self.summary,
            "findings": [finding.as_dict() for finding in self.findings],
        }


_ORDER = (Status.OK, Status.WARNING, Status.UNKNOWN, Status.PROBLEM)


def worst_status(findings: tuple[Finding, ...] | list[Finding]) -> Status:
    return max((finding.status for finding in findings), key=_ORDER.index, default=Status.OK)
