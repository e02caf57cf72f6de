"""Who a compose writes to: recipient fields cut into addresses, each address's contact, and
the plan of who gets which email.

An address typed by hand that belongs to a contact is that contact: its merge fields
resolve, and the message shows in the contact's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address


@dataclass(frozen=True)
class Addressee:
    """One recipient: its address, and the contact it belongs to, if any."""

    address: Address
    contact: Contact | None


RecipientInput = Contact | Address | str


def addresses_split(text: str) -> list[str]:
    """Cut a recipient field into addresses at commas, semicolons and line ends, except
    inside quotes or angle brackets ("Smith, Ann" <ann@example.com> is one address)."""
    pieces: list[str] = []
    current: list[str] = []
    is_quoted = is_angle = is_escaped = False
    for char in text:
        if is_escaped:
            is_escaped = False
        elif char == "\\" and is_quoted:
            is_escaped = True
        elif char == '"':
            is_quoted = not is_quoted
        elif char == "<" and not is_quoted:
            is_angle = True
        elif char == ">" and not is_quoted:
            is_angle = False
        elif char in ",;\r\n" and not is_quoted and not is_angle:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()]


def _contact_address(contact: Contact) -> Address:
    return Address(contact.name, contact.email)


def _parsed(values: Sequence[RecipientInput], *, kind: str, field: str) -> list[Addressee]:
    parsed: list[Addressee] = []
    for index, value in enumerate(values, start=1):
        if isinstance(value, Contact):
            parsed.append(Addressee(_contact_address(value), value))
        elif isinstance(value, Address):
            parsed.append(Addressee(value, None))
        else:
            label = f"Recipient {index} ({kind})"
            parsed.append(Addressee(parse_address(value, label=label, field=field), None))
    return parsed


def addressee_list(
    values: Sequence[RecipientInput], *, kind: str, field: str, limit: int | None
) -> list[Addressee]:
    """Parse one recipient field (contacts, Address objects, or text) into addressees.

    Text is parsed strictly (postroom.mail.addresses); an address that belongs to a contact
    becomes that contact, under the contact's name when it was given without one. The same
    address twice is kept once. More than `limit` is refused: a mailing is a campaign.
    """
    parsed = _parsed(values, kind=kind, field=field)
    if limit is not None and len(parsed) > limit:
        raise ValidationError(
            f"{kind}: {len(parsed)} recipients; Contact Email takes at most {limit}. To write "
            "to more people, send a campaign.",
            field=field,
        )
    keys = [contact_email_key(item.address.addr_spec) for item in parsed if not item.contact]
    contacts = {
        contact.email_key: contact
        for contact in Contact.objects.filter(email_key__in=keys).select_related("organization")
    }
    addressees: list[Addressee] = []
    seen: set[str] = set()
    for item in parsed:
        key = contact_email_key(item.address.addr_spec)
        if key in seen:
            continue
        seen.add(key)
        contact = item.contact or contacts.get(key)
        address = item.address
        if contact is not None and not address.display_name and contact.name:
            address = _contact_address(contact)
        addressees.append(Addressee(address, contact))
    return addressees


@dataclass(frozen=True)
class ComposePlan:
    """Who gets which email: what Send will do, said before anything is written."""

    is_individual: bool  # one email per To recipient, else one email to all
    to: list[Addressee]
    cc: list[Addressee]
    bcc: list[Addressee]

    @property
    def messages(self) -> int:
        """How many emails: one per To recipient, or one to all."""
        if self.is_individual:
            return len(self.to)
        return 1 if self.to or self.cc or self.bcc else 0

    @property
    def copied(self) -> list[Addressee]:
        """The Cc and Bcc recipients: every email carries them."""
        return [*self.cc, *self.bcc]

    @property
    def copied_kinds(self) -> list[tuple[Addressee, str]]:
        """The Cc and Bcc recipients, each with "Cc" or "Bcc"."""
        return [(item, "Cc") for item in self.cc] + [(item, "Bcc") for item in self.bcc]

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)

    @property
    def copies_each(self) -> int:
        """How many emails each Cc and Bcc recipient receives."""
        return self.messages

    def groups(self) -> list[tuple[Addressee, ...]]:
        """The To recipients of each email."""
        if self.is_individual:
            return [(addressee,) for addressee in self.to]
        return [tuple(self.to)] if self.messages else []


def recipients_plan(
    *,
    to: Sequence[RecipientInput],
    cc: Sequence[RecipientInput],
    bcc: Sequence[RecipientInput],
    is_individual: bool,
    is_addressed_to_contacts: bool,
    max_to: int | None,
    max_copies: int | None,
) -> ComposePlan:
    """Parse the three recipient fields into a plan. With `is_addressed_to_contacts` each
    address is looked up as a contact and kept once (`addressee_list`); else as given."""

    def read(values: Sequence[RecipientInput], kind: str, limit: int | None) -> list[Addressee]:
        if is_addressed_to_contacts:
            return addressee_list(values, kind=kind, field=kind.lower(), limit=limit)
        return [
            Addressee(item.address, None) for item in _parsed(values, kind=kind, field=kind.lower())
        ]

    return ComposePlan(
        is_individual=is_individual,
        to=read(to, "To", max_to),
        cc=read(cc, "Cc", max_copies),
        bcc=read(bcc, "Bcc", max_copies),
    )
