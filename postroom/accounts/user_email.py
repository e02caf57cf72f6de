"""Whose address is whose, and how a user changes their own: only once the new mailbox is theirs.

The address a user sends from decides whose mail is whose: mail from it is filed as theirs, they
can download it and Compose sends as it. So a user cannot simply type another address (the
company's invoices@, a colleague's) into their profile. An administrator can set it; a user
asks for the change, Postroom mails a link to the new address, and the change happens when the
user opens the link while logged in as themselves. The link is signed, expires after
`EMAIL_CHANGE_MAX_AGE`, and works once: it names the address it replaces, which is gone after
the change. The old address is then told, so a change nobody asked for does not go unnoticed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from postroom.accounts import selectors
from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.core.errors import PostroomError, ValidationError

# Long enough to read the mail tomorrow morning, short enough that an old link found in a
# mailbox later is useless (OWASP's forgot-password guidance uses similar lifetimes).
EMAIL_CHANGE_MAX_AGE = dt.timedelta(hours=24)
_SALT = "postroom.accounts.email-change"


@dataclass(frozen=True)
class EmailChange:
    user_pk: int
    old: str
    new: str


def email_change_request(*, user: User, new_email: str, confirm_url: Callable[[str], str]) -> None:
    """Mail `new_email` a link that changes `user`'s address to it; change nothing yet.

    `new_email` must be clean (services.user_email_clean) and differ from the current address;
    `confirm_url` turns the token into the link. Raises ValidationError (field "email").
    """
    user_email_holder_check(new_email, exclude_user_pk=user.pk)
    token = signing.dumps({"u": user.pk, "old": user.email, "new": new_email}, salt=_SALT)
    hours = int(EMAIL_CHANGE_MAX_AGE.total_seconds() // 3600)
    _mail(
        to=new_email,
        subject="Confirm your new address for Postroom",
        body=(
            f"Hello {user.name},\n\n"
            f"You asked Postroom to send your mail from {new_email}"
            + (f" instead of {user.email}" if user.email else "")
            + ". To confirm that this mailbox is yours, open this link within "
            f"{hours} hours, logged in to Postroom as {user.username}:\n\n"
            f"{confirm_url(token)}\n\n"
            "If you did not ask for this, ignore this email: nothing changes.\n"
        ),
    )
    audit_record(
        actor=user,
        action="user.email_change_requested",
        subject=f"user {user.username}",
        changes={"Email address": {"from": user.email, "to": new_email}},
    )


def email_change_read(*, user: User, token: str) -> EmailChange:
    """The change `token` asks for, if it is `user`'s, still valid and not yet made."""
    invalid = ValidationError(
        "This confirmation link is not valid: it may have expired (links work for "
        f"{int(EMAIL_CHANGE_MAX_AGE.total_seconds() // 3600)} hours), have been used already, or "
        "belong to another login. Ask for the change again on your profile.",
        field="token",
    )
    try:
        data = signing.loads(token, salt=_SALT, max_age=EMAIL_CHANGE_MAX_AGE)
    except signing.BadSignature:
        raise invalid from None
    change = EmailChange(user_pk=data["u"], old=data["old"], new=data["new"])
    if change.user_pk != user.pk or change.old.lower() != user.email.lower():
        raise invalid
    return change


def email_change_confirm(*, user: User, token: str) -> User:
    """Make the change the link asks for, and tell the old address."""
    change = email_change_read(user=user, token=token)
    user_email_holder_check(change.new, exclude_user_pk=user.pk)
    try:
        with transaction.atomic():
            user.email = change.new
            user.save(update_fields=["email"])
            audit_record(
                actor=user,
                action="user.email_changed",
                subject=f"user {user.username}",
                changes={"Email address": {"from": change.old, "to": change.new}},
            )
    except IntegrityError:
        raise ValidationError(
            "Another user was just given this email address; ask an administrator.",
            field="email",
        ) from None
    if change.old:
        _mail(
            to=change.old,
            subject="Your Postroom address was changed",
            body=(
                f"Hello {user.name},\n\n"
                f"The address your Postroom mail is sent from was changed from {change.old} to "
                f"{change.new}, confirmed from a link mailed to {change.new}.\n\n"
                "If you did not do this, tell your Postroom administrator at once.\n"
            ),
        )
    return user


def user_email_holder_check(address: str, *, exclude_user_pk: int | None = None) -> None:
    """Refuse `address` for a user when someone else sends from it (selectors.address_holder)."""
    holder = selectors.address_holder(address=address, exclude_user_pk=exclude_user_pk)
    if holder is not None:
        raise ValidationError(
            f"{address} is already {holder}. Each address has one sender, because mail from it "
            "is filed as theirs and replies go there; choose another one.",
            field="email",
        )


def _mail(*, to: str, subject: str, body: str) -> None:
    # Through Django's mail API, so through the outbox, from the company's address.
    try:
        send_mail(subject, body, from_email=None, recipient_list=[to])
    except PostroomError as error:
        raise ValidationError(
            f"Postroom cannot mail {to}: {error.message}", field="email"
        ) from None
