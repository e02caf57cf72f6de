"""The tagged return path's settings: checked, saved, audited; and the route the worker
sends with takes them (the relay and the capture, never a user's own mailbox)."""

from __future__ import annotations

import pytest

from postroom.audit.models import AuditEntry
from postroom.bounces.return_path import RETURN_PATH_UPDATED, return_path_update
from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.mail.verp import return_path_message
from postroom.outbox.routing import delivery_route, return_path_keys
from tests.accounts.factories import admin_make

pytestmark = pytest.mark.django_db


def test_turning_it_on_saves_and_audits() -> None:
    admin = admin_make()
    return_path_update(actor=admin, bounce_address=" Bounces@Example.com ", tag_return_path=True)
    company = company_get()
    assert (company.bounce_address, company.tag_return_path) == ("Bounces@example.com", True)
    entry = AuditEntry.objects.get(action=RETURN_PATH_UPDATED)
    assert entry.changes["Tag the return path"] == {"from": False, "to": True}
    # Saving the same again is no change.
    return_path_update(actor=admin, bounce_address="Bounces@example.com", tag_return_path=True)
    assert AuditEntry.objects.filter(action=RETURN_PATH_UPDATED).count() == 1


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("", "Enter the bounce address"),
        ("not an address", "Bounce address: 'not an address' is not valid."),
        ("bounces+x@example.com", "already has a '+' in it"),
        (f"{'b' * 40}@example.com", "use at most 39"),
    ],
)
def test_a_bad_bounce_address_is_refused_by_name(address: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        return_path_update(actor=admin_make(), bounce_address=address, tag_return_path=True)
    assert caught.value.field == "bounce_address"
    assert words in caught.value.message
    assert company_get().tag_return_path is False


def test_the_route_tags_the_sender_only_when_switched_on() -> None:
    assert delivery_route().envelope_sender(message_pk=5, envelope_from="a@example.com") == (
        "a@example.com"
    )
    return_path_update(actor=None, bounce_address="bounces@example.com", tag_return_path=True)
    sender = delivery_route().envelope_sender(message_pk=5, envelope_from="a@example.com")
    key = return_path_keys()[0]
    assert return_path_message(sender, bounce_address="bounces@example.com", key=key) == 5
    # A bounce address kept while tagging is off changes nothing.
    return_path_update(actor=None, bounce_address="bounces@example.com", tag_return_path=False)
    assert delivery_route().envelope_sender(message_pk=5, envelope_from="a@example.com") == (
        "a@example.com"
    )
