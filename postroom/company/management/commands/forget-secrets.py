"""`postroom forget-secrets`: clear stored passwords that can no longer be decrypted.

For the day the secret key is lost: Postroom refuses to start with secrets it cannot read,
and this is the way out — the passwords are cleared (and audited), then entered again on
the SMTP Server Information page.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from postroom.company.services import company_forget_secrets


class Command(BaseCommand):
    help = (
        "Clear the stored SMTP and ePOD passwords (when the secret key that encrypted them "
        "is lost)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, yes: bool, **options: Any) -> None:
        if not yes:
            answer = input("Clear the stored SMTP and ePOD passwords? Type 'yes': ")
            if answer.strip().lower() != "yes":
                self.stdout.write("Nothing changed.")
                return
        cleared = company_forget_secrets()
        if cleared:
            self.stdout.write(
                "Cleared: " + ", ".join(cleared) + ". Enter them again under Company > "
                "SMTP Server Information."
            )
        else:
            self.stdout.write("No passwords were stored.")
