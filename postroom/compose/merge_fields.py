"""The merge fields of Contact Email and their values for one recipient.

`{{ contact.… }}` is the To recipient, `{{ user.… }}` the sender, `{{ company.… }}` the
Company master. The API adds its own roots from a request's `data` (`{{ order.number }}`);
a key of `data` named contact, user or company replaces Postroom's own values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from postroom.compose.recipients import Addressee
from postroom.mail.merge_rules import merge_root_check

# What `{{ contact.… }}`, `{{ user.… }}` and `{{ company.… }}` may name.
MERGE_FIELDS: dict[str, tuple[str, ...]] = {
    "contact": ("first_name", "last_name", "name", "email", "company"),
    "user": ("name", "email"),
    "company": ("name",),
}

MergeSchema = dict[str, Collection[str] | None]


def contact_values(addressee: Addressee | None) -> dict[str, str]:
    """`contact.…` for one recipient. An address that is no contact has its typed name as
    `name` and empty first and last names; no recipient at all has every field empty."""
    if addressee is None:
        return dict.fromkeys(MERGE_FIELDS["contact"], "")
    contact = addressee.contact
    if contact is None:
        return {
            "first_name": "",
            "last_name": "",
            "name": addressee.address.display_name,
            "email": addressee.address.addr_spec,
            "company": "",
        }
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "email": contact.email,
        "company": contact.organization.name if contact.organization else "",
    }


def merge_context(
    *,
    addressee: Addressee | None,
    sender: Mapping[str, str],
    company_name: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The merge field values for one To recipient: Postroom's own, then `data`'s."""
    context: dict[str, Any] = {
        "contact": contact_values(addressee),
        "user": dict(sender),
        "company": {"name": company_name},
    }
    context.update(data)
    return context


def merge_schema(data: Mapping[str, Any]) -> MergeSchema:
    """The roots a template may use and, for Postroom's own, their fields (a typo is named);
    the fields of `data`'s roots are whatever the caller gave. Refuses a key of `data` that
    cannot be a merge field name."""
    for key in data:
        merge_root_check(key, field="data")
    schema: MergeSchema = {
        root: None if root in data else fields for root, fields in MERGE_FIELDS.items()
    }
    schema.update(dict.fromkeys(data))
    return schema
