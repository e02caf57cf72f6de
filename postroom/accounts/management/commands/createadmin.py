"""`postroom createadmin`: make an administrator from the command line.

Interactive by default (asks the login, address, name and the password twice). With
--no-input it takes the flags and generates a strong password, printed once; a generated
password must be changed at the first login.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.accounts import services
from postroom.accounts.models import Role, User
from postroom.accounts.selectors import user_username_taken
from postroom.core.errors import PostroomError, ValidationError


class Command(BaseCommand):
    help = (
        "Create a Postroom administrator (asks for details, or --no-input to generate a password)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", help="login name (default with --no-input: admin)")
        parser.add_argument("--email", default=None, help="email address mail is sent from")
        parser.add_argument("--display-name", default=None, help='e.g. "Alice Smith"')
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="ask nothing; generate a one-time password and print it",
        )

    def handle(
        self,
        *args: Any,
        username: str | None,
        email: str | None,
        display_name: str | None,
        interactive: bool,
        **options: Any,
    ) -> None:
        try:
            if interactive:
                self._create_interactively(username, email, display_name)
            else:
                self._create(
                    username=username or services.FIRST_ADMIN_USERNAME,
                    email=email or "",
                    display_name=display_name or "",
                    password=None,
                )
        except (EOFError, KeyboardInterrupt):
            raise CommandError("Cancelled: no administrator was created.") from None
        except PostroomError as error:
            raise CommandError(error.message) from None

    def _create_interactively(
        self, username: str | None, email: str | None, display_name: str | None
    ) -> None:
        username = username or self._ask("Login", _available_username)
        if email is None:
            email = self._ask("Email address (blank for none)", services.user_email_clean)
        if display_name is None:
            display_name = self._ask("Display name", services.user_display_name_clean)
        while True:
            password = getpass.getpass("Password (blank to generate one): ")
            if not password:
                break
            if password != getpass.getpass("Password again: "):
                self.stderr.write("The two passwords differ. Type them again.")
                continue
            probe = User(username=username, email=email, display_name=display_name)
            try:
                services.user_password_check(password, user=probe)
            except PostroomError as error:
                self.stderr.write(error.message)
                continue
            break
        self._create(
            username=username, email=email, display_name=display_name, password=password or None
        )

    def _ask(self, prompt: str, clean: Callable[[str], str]) -> str:
        """Ask until `clean` accepts the answer, showing why it did not."""
        while True:
            answer = input(f"{prompt}: ")
            try:
                return clean(answer)
            except PostroomError as error:
                self.stderr.write(error.message)

    def _create(
        self, *, username: str, email: str, display_name: str, password: str | None
    ) -> None:
        user, generated = services.user_create(
            actor=None,
            username=username,
            display_name=display_name,
            email=email,
            role=Role.ADMINISTRATOR,
            password=password,
        )
        self.stdout.write(self.style.SUCCESS(f"Administrator '{user.username}' was created."))
        if generated:
            self.stdout.write(f"One-time password: {generated}")
            self.stdout.write(
                "It is shown only once: give it to the user, who will be asked to choose "
                "their own password when they first log in."
            )


def _available_username(value: str) -> str:
    username = services.user_username_clean(value)
    if user_username_taken(username=username):
        raise ValidationError(f"The login name {username!r} is taken. Choose another one.")
    return username
