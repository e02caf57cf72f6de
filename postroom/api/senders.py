"""Who an API message is from: the company, a user, or an address the key lists.

The `from` of a send request names a sender rather than spelling a header, so a caller
cannot put a user's address under another name: "company", a user's login or address, or
an allowed From address. The key's sender restriction is checked here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.db import connection

from postroom.accounts.api_keys import COMPANY, api_key_check_sender
from postroom.accounts.models import ApiKey, User
from postroom.company.selectors import COMPANY_PK
from postroom.core.errors import ConfigurationError, ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.header_text import reject_control_characters


class UnknownUserError(ValidationError):
    code = "unknown_user"


@dataclass(frozen=True)
class Sender:
    address: Address
    user: User | None  # None: the company or a role address


@dataclass(frozen=True)
class CompanySender:
    """The company's sender address, all a sender needs of the company's row."""

    email: str
    name: str


def company_sender_get() -> CompanySender:
    """Read on nearly every API send: two columns, not the row's 27 (company_get), in a
    statement written out, which runs in a fifth of the time the ORM takes to build it."""
    with connection.cursor() as cursor:
        cursor.execute(_COMPANY_SENDER, [COMPANY_PK])
        row = cursor.fetchone()
    return CompanySender(*row) if row else CompanySender("", "")


# Company's table and columns; plain identifiers, the same in SQLite, PostgreSQL and MySQL.
_COMPANY_SENDER = "SELECT sender_email, sender_name FROM company_company WHERE id = %s"


def sender_resolve(
    *, value: str | None, api_key: ApiKey, company: Callable[[], CompanySender] | None = None
) -> Sender:
    """Turn a request's `from` into a Sender the key may use; raise a PostroomError if not.

    `company` returns the company's address (a batch reads it once for all its messages);
    by default it is read once, and only when the sender needs it.
    """
    company = company or cache(company_sender_get)
    if value is None or not value.strip():
        value = api_key.sender_user.username if api_key.sender_user else COMPANY
    value = value.strip()
    reject_control_characters(value, label="From", what="the sender", field="from")
    if value.lower() == COMPANY:
        sender = Sender(address=_company_address(company()), user=None)
    elif "@" in value:
        address = parse_address(value, label="From", field="from")
        if _is_company_address(address.addr_spec, company()):
            # The company's address means the company, even if a user were given it too.
            sender = Sender(address=_company_address(company()), user=None)
        elif user := _active(User.objects.filter(email__iexact=address.addr_spec).first()):
            # A user's own address sends as that user, under their name.
            sender = Sender(address=_user_address(user), user=user)
        else:
            sender = Sender(address, None)
    else:
        # Logins differ in more than case (user_username_taken), so iexact finds one.
        user = _active(User.objects.filter(username__iexact=value).first())
        if user is None:
            raise UnknownUserError(
                f"From: there is no user with the login {value!r}. Give a user's login or "
                'email address, "company", or an allowed From address.',
                field="from",
            )
        sender = Sender(address=_user_address(user), user=user)
    is_company = sender.user is None and _is_company_address(sender.address.addr_spec, company())
    api_key_check_sender(
        api_key=api_key,
        user=sender.user,
        address=sender.address.addr_spec,
        is_company=is_company,
    )
    return sender


def _active(user: User | None) -> User | None:
    if user is not None and not user.is_active:
        raise ValidationError(
            f"From: the user {user.username} is deactivated and cannot send.", field="from"
        )
    return user


def _user_address(user: User) -> Address:
    if not user.email:
        raise ValidationError(
            f"From: the user {user.username} has no email address; an administrator adds one "
            "under Users.",
            field="from",
        )
    name = user.display_name or user.get_full_name()
    return Address(name, parse_address(user.email, label="From", field="from").addr_spec)


def _company_address(company: CompanySender) -> Address:
    if not company.email:
        raise ConfigurationError(
            "The company has no email address yet: an administrator sets it under Company > "
            "SMTP Server Information.",
            field="from",
        )
    address = parse_address(company.email, label="Company address", field="from")
    return Address(company.name, address.addr_spec)


def _is_company_address(addr_spec: str, company: CompanySender) -> bool:
    company_address = company.email
    return bool(company_address) and company_address.strip().lower() == addr_spec.lower()
