"""`postroom doctor`: check the company SMTP server step by step, then the sending domains'
SPF, DKIM, DMARC and MX and the HELO name (postroom.domains), from the command line.

Prints each step and finding with its status and, for a problem, what to change or publish;
`--to` also sends a test email; `--domains` runs the domain check alone; `--json` prints the
report as JSON. Exits 1 when an SMTP step failed, or, with `--domains`, when a domain has a
problem. Without `--domains` the domain check only informs: the relay works whatever the DNS
says, and mail that may land in spam is not a broken setup (the page and the summary say so).

It lives in the domains app, which sits above company and mail (docs/architecture.md), so it
may call both checks.
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
from postroom.domains.check import DomainCheck, domains_check
from postroom.domains.findings import Finding, Status
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
        parser.add_argument(
            "--domains",
            action="store_true",
            help="check only the sending domains' DNS records (SPF, DKIM, DMARC, MX, HELO)",
        )

    def handle(self, *args: Any, to: str | None, json: bool, domains: bool, **options: Any) -> None:
        if domains:
            self._domains_only(as_json=json, verbosity=options.get("verbosity", 1))
            return
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
        if not json:
            self._print(report, verbosity=options.get("verbosity", 1))
            self.stdout.write("\nChecking the sending domains' DNS records…")
        domain_check = domains_check()
        if json:
            self.stdout.write(_json_dumps({**report.as_dict(), "domains": domain_check.as_dict()}))
        else:
            self._print_domains(domain_check, verbosity=options.get("verbosity", 1))
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

    def _domains_only(self, *, as_json: bool, verbosity: int) -> None:
        if not as_json:
            self.stdout.write("Checking the sending domains' DNS records…")
        domain_check = domains_check()
        if as_json:
            self.stdout.write(_json_dumps({"domains": domain_check.as_dict()}))
        else:
            self._print_domains(domain_check, verbosity=verbosity)
        problems = _problem_count(domain_check)
        if problems:
            raise CommandError(f"{problems} domain problem(s) found.", returncode=1)

    def _print_domains(self, check: DomainCheck, *, verbosity: int) -> None:
        if not check.domains:
            self.stdout.write(
                "No sending domain: set the company email address (Company → SMTP Server "
                "Information → Edit → Company sender)."
            )
        for report in check.domains:
            self.stdout.write(f"\n{report.domain}: {report.summary}")
            for finding in report.findings:
                self._print_finding(finding, verbosity=verbosity)
        self.stdout.write("")
        self._print_finding(check.helo, verbosity=verbosity)

    def _print_finding(self, finding: Finding, *, verbosity: int) -> None:
        style = {
            Status.OK: self.style.SUCCESS,
            Status.WARNING: self.style.WARNING,
            Status.PROBLEM: self.style.ERROR,
            Status.UNKNOWN: self.style.HTTP_NOT_MODIFIED,
        }[finding.status]
        self.stdout.write(
            f"[{style(_FINDING_MARKS[finding.status])}] {finding.title}: {finding.message}"
        )
        if finding.found and (verbosity >= 2 or finding.status is not Status.OK):
            for text in finding.found:
                self.stdout.write(f"       Published: {text}")
        if finding.record is not None:
            record = finding.record
            self.stdout.write(f"       Publish: {record.name} {record.type} {record.value}")


_FINDING_MARKS = {
    Status.OK: " OK ",
    Status.WARNING: "WARN",
    Status.PROBLEM: "FAIL",
    Status.UNKNOWN: " ?? ",
}


def _problem_count(check: DomainCheck) -> int:
    findings = [check.helo, *(finding for report in check.domains for finding in report.findings)]
    return sum(finding.status is Status.PROBLEM for finding in findings)


def _recipient(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise CommandError(f"--to {address!r} is not a valid email address: {error}") from None


def _json_dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
