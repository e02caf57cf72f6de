"""`postroom doctor`: check the company SMTP server step by step, from the command line.

Prints each step with its status and, for a failure, what to change; `--to` also sends a
test email; `--json` prints the report as JSON. Exits 1 when a step failed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from email_validator import EmailNotValidError, validate_email

from postroom.company.selectors import company_get
from postroom.company.smtp import company_sender_addresses, company_smtp_config
from postroom.core.errors import PostroomError
from postroom.mail.diagnostics import CheckReport, CheckStep, StepStatus, check_connection

_MARKS = {
    StepStatus.OK: " OK ",
    StepStatus.WARN: "WARN",
    StepStatus.FAIL: "FAIL",
    StepStatus.SKIP: "SKIP",
}


class Command(BaseCommand):
    help = "Check the connection to the company SMTP server and optionally send a test email."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", metavar="ADDRESS", help="also send a test email to ADDRESS")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, to: str | None, json: bool, **options: Any) -> None:
        recipient = _recipient(to) if to else None
        company = company_get()
        try:
            config = company_smtp_config(company)
        except PostroomError as error:
            raise CommandError(error.message) from None
        senders = company_sender_addresses(company.sender_email)
        if not json:
            self.stdout.write(f"Checking {config.host} port {config.port}…")
        report = asyncio.run(check_connection(config, senders=senders, test_recipient=recipient))
        if json:
            self.stdout.write(_json_dumps(report.as_dict()))
        else:
            self._print(report, verbosity=options.get("verbosity", 1))
        if not report.is_ok:
            failed = sum(step.status is StepStatus.FAIL for step in report.steps)
            raise CommandError(f"{failed} step(s) failed.", returncode=1)

    def _print(self, report: CheckReport, *, verbosity: int) -> None:
        self.stdout.write(f"Security: {report.tls_label}\n")
        for step in report.steps:
            self._print_step(step, verbosity=verbosity)
        warnings = sum(step.status is StepStatus.WARN for step in report.steps)
        if report.is_ok:
            tail = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
            self.stdout.write(self.style.SUCCESS(f"\nThe SMTP server works{tail}."))

    def _print_step(self, step: CheckStep, *, verbosity: int) -> None:
        style = {
            StepStatus.OK: self.style.SUCCESS,
            StepStatus.WARN: self.style.WARNING,
            StepStatus.FAIL: self.style.ERROR,
            StepStatus.SKIP: self.style.HTTP_NOT_MODIFIED,
        }[step.status]
        took = f" ({step.duration_ms} ms)" if step.duration_ms is not None else ""
        self.stdout.write(f"[{style(_MARKS[step.status])}] {step.name}: {step.summary}{took}")
        # Details of a passing step are for the curious (-v 2); a problem shows them all.
        if verbosity >= 2 or step.status in (StepStatus.FAIL, StepStatus.WARN):
            for line in step.details:
                self.stdout.write(f"       {line}")
        if step.advice:
            self.stdout.write(f"       What to do: {step.advice}")


def _recipient(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise CommandError(f"--to {address!r} is not a valid email address: {error}") from None


def _json_dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
