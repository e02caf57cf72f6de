"""`postroom unlock`: list locked logins, or unlock a login name or a client address.

The same as the Unlock buttons on the Users page, for when no administrator can log in
(their own login is the one locked). Each unlock is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from postroom.accounts.lockouts import LockoutKind, lockout_list, lockout_unlock
from postroom.core.errors import PostroomError


class Command(BaseCommand):
    help = "List locked logins; with --login or --address, unlock one."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--login", help="unlock this login name")
        target.add_argument("--address", help="unlock this client IP address")

    def handle(self, *args: Any, login: str | None, address: str | None, **options: Any) -> None:
        if login is not None:
            self._unlock(LockoutKind.ACCOUNT, login, f"Logins as {login} are unlocked.")
        elif address is not None:
            self._unlock(LockoutKind.ADDRESS, address, f"Logins from {address} are unlocked.")
        else:
            self._list()

    def _unlock(self, kind: LockoutKind, value: str, done: str) -> None:
        try:
            failures = lockout_unlock(actor=None, kind=kind, value=value)
        except PostroomError as error:
            raise CommandError(error.message) from None
        if not failures:
            raise CommandError(f"{value} is not locked and has no failed logins to clear.")
        self.stdout.write(self.style.SUCCESS(f"{done} {failures} failed logins were cleared."))

    def _list(self) -> None:
        locks = lockout_list()
        if not locks:
            self.stdout.write("Nothing is locked.")
            return
        for lock in locks:
            ends_at = timezone.localtime(lock.ends_at)
            self.stdout.write(
                f"{lock.described}: {lock.failures} failed logins, locked until "
                f"{ends_at:%Y-%m-%d %H:%M %Z}"
            )
        self.stdout.write("Unlock one with --login NAME or --address ADDRESS.")
