"""Mail from a user to a contact: from the user's own address, or "via" the company.

The seed wants contacts to reply straight to the user, so mail comes from the user's
address. Many relays refuse that (Microsoft 365's SendAsDenied, Postfix's "not owned by
user"); the company's send-as policy decides what happens then:
- as_user: From is the user, always;
- via_company: From is "Alice Smith via Acme" <company address>, Reply-To the user;
- auto: as the user, with the "via" version queued alongside; when the relay refuses the
  user's address the worker sends the "via" version instead and remembers the refusal, so
  later mail from that address goes "via" the company from the start.
Whatever the policy, a user who connected their own mailbox (an OAuth sign-in of theirs,
postroom.oauth) sends as themselves through it: the company relay's rules do not apply.

The policy applies to mail from a user's own address, whoever queues it: message_enqueue
calls `send_as_apply` itself, so no caller can forget it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from postroom.accounts.models import User
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.message import OutgoingEmail
from postroom.oauth.models import OAuthConnection, user_owner
from postroom.outbox.models import SendAs, SenderRefusal


@dataclass(frozen=True)
class SenderChoice:
    email: OutgoingEmail  # what is sent first
    send_as: SendAs | str  # "" for mail that is not from a user (the company's own)
    fallback: OutgoingEmail | None = None  # sent instead if the relay refuses the user


def user_address(user: User) -> Address:
    if not user.email:
        raise ValidationError(
            f"{user.name} has no email address, and mail to contacts comes from the user's "
            "own address: add one under Users (or their profile).",
            field="from",
        )
    return parse_address(user.email, label="Sender", field="from")


def via_company(email: OutgoingEmail, *, user: User, company: Company) -> OutgoingEmail:
    if not company.sender_email:
        raise ValidationError(
            "Sending via the company needs the company email address: set it under Company "
            "> SMTP Server Information.",
            field="from",
        )
    company_name = company.sender_name or company.name or company.sender_email
    sender = Address(f"{user.name} via {company_name}", company.sender_email)
    own = Address(user.name, user_address(user).addr_spec)
    return dataclasses.replace(email, from_=sender, reply_to=[own, *email.reply_to])


def sender_choice(*, email: OutgoingEmail, user: User, company: Company) -> SenderChoice:
    """Apply the company's send-as policy to `email`, written as from the user."""
    own = user_address(user)
    as_user = dataclasses.replace(email, from_=Address(user.name, own.addr_spec))
    if has_own_mailbox(user):
        return SenderChoice(as_user, SendAs.OWN_MAILBOX)
    policy = company.send_as_policy
    if policy == SendAsPolicy.AS_USER or (policy == SendAsPolicy.AUTO and not company.sender_email):
        # Without a company address there is nothing to fall back to (a new install, or the
        # capture inbox): the user's own address is all there is.
        return SenderChoice(as_user, SendAs.AS_USER)
    via = via_company(as_user, user=user, company=company)
    if policy == SendAsPolicy.VIA_COMPANY:
        return SenderChoice(via, SendAs.VIA_COMPANY)
    if SenderRefusal.objects.filter(address__iexact=own.addr_spec).exists():
        return SenderChoice(via, SendAs.VIA_COMPANY)
    return SenderChoice(as_user, SendAs.AS_USER, fallback=via)


def has_own_mailbox(user: User) -> bool:
    """Whether `user` connected their own mailbox and it can log in without them."""
    connection = OAuthConnection.objects.filter(owner=user_owner(user.pk)).first()
    return connection is not None and connection.is_signed_in


def send_as_apply(*, email: OutgoingEmail, user: User | None) -> SenderChoice:
    """The send-as policy where it applies: to mail whose From is the sending user's own
    address. Anything else (the company's mail, an address an API key may send from, mail
    without a user) goes as written."""
    if user is None or not _is_own_address(user, email.from_.addr_spec):
        return SenderChoice(email, send_as="")
    return sender_choice(email=email, user=user, company=company_get())


def _is_own_address(user: User, addr_spec: str) -> bool:
    if not user.email:
        return False
    try:
        own = parse_address(user.email, label="Sender", field="from").addr_spec
    except ValidationError:
        return False  # an address saved before a rule existed: it cannot be this From
    return own.lower() == addr_spec.lower()
