"""Email addresses: parse, validate, normalise — and keep header injection out by construction.

Every address that reaches a header or an SMTP envelope passes through here:

* `email-validator` checks the syntax (no DNS lookup: deliverability is the server's business,
  and a lookup per recipient would make enqueueing slow and flaky);
* internationalised domains become punycode (RFC 5890) — the `email` package cannot fold a
  Unicode domain in an ASCII header (it writes an encoded word into the addr-spec, which no
  server accepts), and the envelope must be ASCII unless the server offers SMTPUTF8;
* a UTF-8 local part (RFC 6531) is allowed but flagged `needs_smtputf8`: only a server that
  offers SMTPUTF8 can carry it, so the transport fails such a recipient permanently, with a
  clear error, when the server does not;
* CR, LF, NUL and every other control character are refused in names and addresses, also
  inside RFC 2047 encoded words (postroom.mail.header_text), so no header or SMTP command can
  be split (header injection / SMTP smuggling).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address as HeaderAddress
from functools import cached_property, lru_cache

import email_validator

from postroom.core.errors import ValidationError
from postroom.mail.header_text import check_header_phrase, reject_control_characters

# An addr-spec as email-validator returns it: no quotes, blanks, brackets or commas, one "@".
# Checked on every Address so a hand-built one cannot break the header syntax either.
_ADDR_SPEC = re.compile(r'[^\s<>()\[\]\\,;:"@]+@[^\s<>()\[\]\\,;:"@]+')


@dataclass(frozen=True)
class NormalizedAddress:
    """An address after email-validator, in the forms the headers and the envelope need."""

    addr_spec: str  # local@ascii-domain: what the headers and MAIL FROM / RCPT TO carry
    local_part: str
    domain: str  # as the person wrote it (Unicode for an IDN), for display
    ascii_domain: str  # punycode
    needs_smtputf8: bool  # the local part is UTF-8: only an SMTPUTF8 server can take it

    @property
    def envelope(self) -> str:
        return self.addr_spec


@dataclass(frozen=True)
class Address:
    """A display name and an addr-spec, as they will appear in a header.

    Built by `parse_address` (which normalises the addr-spec); constructing one by hand is
    allowed, and it still refuses control characters and addr-specs that would break the
    header syntax.
    """

    display_name: str
    addr_spec: str

    def __post_init__(self) -> None:
        check_header_phrase(self.display_name, label="Address", what="the name", field="address")
        _check_addr_spec_text(self.addr_spec, label="Address", field="address")
        if _ADDR_SPEC.fullmatch(self.addr_spec) is None:
            raise ValidationError(
                f"Address: {self.addr_spec!r} is not an email address like name@example.com.",
                field="address",
            )

    @cached_property
    def formatted(self) -> str:
        """The header form: `Name <addr>`, quoting the name when it holds specials."""
        username, _, domain = self.addr_spec.rpartition("@")
        return str(HeaderAddress(self.display_name, username=username, domain=domain))

    def __str__(self) -> str:
        return self.formatted


def _check_addr_spec_text(addr: str, *, label: str, field: str) -> None:
    reject_control_characters(addr, label=label, what="the address", field=field)
    if "=?" in addr:
        # RFC 5321 allows "=" and "?" in a local part, but the email package decodes an encoded
        # word it finds there (get_dot_atom) and writes the result into the header: the To line
        # would differ from the envelope, or be split by a decoded CR LF.
        raise ValidationError(
            f'{label}: {addr!r} contains "=?", which mail software reads as an encoded word '
            "(RFC 2047) and rewrites; Postroom cannot send to such an address safely.",
            field=field,
        )


@lru_cache(maxsize=4096)  # the same senders and recipients recur; validation costs ≈ 20 µs
def _validate(addr: str, allow_smtputf8: bool) -> NormalizedAddress:
    result = email_validator.validate_email(
        addr, check_deliverability=False, allow_smtputf8=allow_smtputf8
    )
    local_part = result.local_part
    return NormalizedAddress(
        addr_spec=f"{local_part}@{result.ascii_domain}",
        local_part=local_part,
        domain=result.domain,
        ascii_domain=result.ascii_domain,
        needs_smtputf8=not local_part.isascii(),
    )


def normalize_address(
    addr: str, *, allow_smtputf8: bool = True, label: str = "Address", field: str = "address"
) -> NormalizedAddress:
    """Validate a bare addr-spec (no display name) and return its normalised forms.

    With `allow_smtputf8=False` a UTF-8 local part is refused with an explanation instead of
    being flagged.
    """
    _check_addr_spec_text(addr, label=label, field=field)
    addr = addr.strip()
    if not addr:
        raise ValidationError(f"{label}: the address is empty.", field=field)
    try:
        return _validate(addr, allow_smtputf8)
    except email_validator.EmailNotValidError as exc:
        if not allow_smtputf8 and "before the @-sign are not supported" in str(exc):
            raise ValidationError(
                f"{label}: {addr!r} has non-ASCII characters before the @, which only a server "
                "offering SMTPUTF8 (RFC 6531) can deliver; use an ASCII address.",
                field=field,
            ) from None
        raise ValidationError(f"{label}: {addr!r} is not valid. {exc}", field=field) from None


def parse_address(
    value: str, *, allow_smtputf8: bool = True, label: str = "Address", field: str = "address"
) -> Address:
    """Parse `addr`, `<addr>` or `Name <addr>` (RFC 5322 name-addr) into a normalised Address.

    Parsing is strict: anything the `email` package's parser reports a defect for, groups,
    several addresses, or trailing garbage is refused rather than guessed at.
    """
    reject_control_characters(value, label=label, what="the address", field=field)
    value = value.strip()
    if not value:
        raise ValidationError(f"{label}: the address is empty.", field=field)
    if not any(char in value for char in '<>"(),;:'):
        display_name, addr_spec = "", value
    else:
        display_name, addr_spec = _parse_name_addr(value, label=label, field=field)
    normalized = normalize_address(
        addr_spec, allow_smtputf8=allow_smtputf8, label=label, field=field
    )
    return Address(display_name, normalized.addr_spec)


def _parse_name_addr(value: str, *, label: str, field: str) -> tuple[str, str]:
    garbage = ValidationError(
        f"{label}: {value!r} is not an address; write name@example.com or "
        '"Name" <name@example.com>.',
        field=field,
    )
    try:
        header = email_policy.default.header_factory("To", value)
    except (HeaderParseError, ValueError, IndexError, AttributeError):
        # AttributeError: an empty group before an address ("x:; <a@example.org>") makes the
        # package's AddressHeader treat the Group as a mailbox (seen on CPython 3.11.7).
        raise garbage from None
    groups = header.groups  # type: ignore[attr-defined]
    # A UTF-8 local part is a "defect" to the package; email-validator judges it below.
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if defects or len(groups) != 1 or groups[0].display_name is not None:
        raise garbage
    (address,) = groups[0].addresses or (None,)
    if address is None or not address.username or not address.domain:
        raise garbage
    display_name = " ".join(address.display_name.split())  # unfold, collapse blanks
    check_header_phrase(display_name, label=label, what="the name", field=field)
    return display_name, address.addr_spec


def parse_address_list(
    values: Sequence[str], *, kind: str, field: str, allow_smtputf8: bool = True
) -> list[Address]:
    """Parse one recipient field; errors name the recipient ("Recipient 2 (Cc): …")."""
    return [
        parse_address(
            value,
            allow_smtputf8=allow_smtputf8,
            label=f"Recipient {index} ({kind})",
            field=field,
        )
        for index, value in enumerate(values, start=1)
    ]
