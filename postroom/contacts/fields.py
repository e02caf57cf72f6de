"""The rules of each contact field, as pure functions.

The services (the contact pages and the API), the forms and the CSV import all apply these,
so a contact is valid by the same rules however it arrives. Each function returns the
cleaned value or raises `postroom.core.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.header_text import check_header_phrase

# The model fields' lengths (postroom.contacts.models).
NAME_MAX_LENGTH = 150
PHONE_MAX_LENGTH = 50  # E.164 allows 15 digits; the rest is room for spacing and "ext. 1234"
ORGANIZATION_NAME_MAX_LENGTH = 200
WEBSITE_MAX_LENGTH = 500
TAG_MAX_LENGTH = 50
CONSENT_SOURCE_MAX_LENGTH = 200
# About ten pages of text: notes about a person, not documents.
NOTES_MAX_LENGTH = 20_000

# Characters that must not reach a header or mislead a reader: C0/C1 controls (CR and LF
# would allow header injection once a name is in a To line), the Unicode line and
# paragraph separators, the bidi overrides and isolates that reorder text on screen, and
# lone surrogates, which cannot be encoded.
_LINE_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Notes may span lines and hold tabs; every other control character is refused (NUL cannot
# even be stored in a PostgreSQL text column).
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Tags are separated by these in the tag field and in a CSV cell.
TAG_SEPARATORS = re.compile(r"[,;|]")


def _one_line(value: str, *, label: str, field: str, max_length: int) -> str:
    text = value.strip()
    if _LINE_CONTROL.search(text):
        raise ValidationError(
            f"{label} contains a line break or another control character. Type it on one "
            "line, with visible characters only.",
            field=field,
        )
    if len(text) > max_length:
        raise ValidationError(
            f"{label} is {len(text)} characters long; use at most {max_length}.", field=field
        )
    return text


def contact_name_clean(value: str, *, field: str = "first_name") -> str:
    label = "The last name" if field == "last_name" else "The first name"
    name = _one_line(value, label=label, field=field, max_length=NAME_MAX_LENGTH)
    # The name goes into the To line of every email to the contact.
    what = label.removeprefix("The ").capitalize()
    check_header_phrase(name, label=what, what=label.lower(), field=field)
    return name


def contact_email_clean(value: str, *, field: str = "email") -> tuple[str, str]:
    """Return the normalised address and its case-insensitive key (what "the same address"
    means for contacts: Alice@Example.com and alice@example.com are one contact)."""
    if not value.strip():
        raise ValidationError("Enter the contact's email address.", field=field)
    normalized = normalize_address(value, label="Email address", field=field)
    return normalized.addr_spec, contact_email_key(normalized.addr_spec)


def contact_email_key(email: str) -> str:
    return email.lower()


def contact_phone_clean(value: str) -> str:
    return _one_line(value, label="The phone number", field="phone", max_length=PHONE_MAX_LENGTH)


def contact_notes_clean(value: str) -> str:
    text = value.strip()
    if _TEXT_CONTROL.search(text):
        raise ValidationError(
            "The notes contain a control character (such as NUL); remove it.", field="notes"
        )
    if len(text) > NOTES_MAX_LENGTH:
        raise ValidationError(
            f"The notes are {len(text)} characters long; keep them under {NOTES_MAX_LENGTH}.",
            field="notes",
        )
    return text


def consent_source_clean(value: str) -> str:
    return _one_line(
        value,
        label="The consent source",
        field="marketing_consent_source",
        max_length=CONSENT_SOURCE_MAX_LENGTH,
    )


def organization_name_clean(value: str, *, field: str = "name") -> str:
    """Blanks inside the name are collapsed, so "Acme  Inc" and "Acme Inc" are one company."""
    name = " ".join(
        _one_line(
            value,
            label="The company name",
            field=field,
            max_length=ORGANIZATION_NAME_MAX_LENGTH,
        ).split()
    )
    return name


def organization_name_key(name: str) -> str:
    return " ".join(name.split()).lower()


def organization_website_clean(value: str) -> str:
    website = _one_line(value, label="The website", field="website", max_length=WEBSITE_MAX_LENGTH)
    if not website:
        return ""
    if "://" not in website:
        website = f"https://{website}"
    try:
        URLValidator(schemes=["http", "https"])(website)
    except DjangoValidationError:
        raise ValidationError(
            f"{website!r} is not a web address; write it like https://example.com.",
            field="website",
        ) from None
    return website


def tag_name_clean(value: str, *, field: str = "tags") -> str:
    """Tags are kept in lower case with single blanks: "Trade  Fair" is "trade fair"."""
    name = " ".join(value.split()).lower()
    if _LINE_CONTROL.search(name):
        raise ValidationError(
            f"The tag {name!r} contains a control character; use visible characters only.",
            field=field,
        )
    if TAG_SEPARATORS.search(name):
        raise ValidationError(
            f"The tag {name!r} contains a comma, semicolon or bar, which separate tags.",
            field=field,
        )
    if len(name) > TAG_MAX_LENGTH:
        raise ValidationError(
            f"The tag {name[:20]!r}… is {len(name)} characters long; use at most {TAG_MAX_LENGTH}.",
            field=field,
        )
    return name


def tag_names_parse(value: str | Iterable[str], *, field: str = "tags") -> list[str]:
    """Clean tags given as one text ("customer, vip") or as a list; duplicates and empty
    entries are dropped, the first occurrence's order kept."""
    parts = TAG_SEPARATORS.split(value) if isinstance(value, str) else list(value)
    names: dict[str, None] = {}
    for part in parts:
        name = tag_name_clean(part, field=field)
        if name:
            names[name] = None
    return list(names)
