"""What a recipient does with a campaign message: unsubscribe, resubscribe, open, click.

Each is reached through the recipient's signed token (postroom.campaigns.links), without a
login. Unsubscribing puts the address on the suppression list (reason "unsubscribed"), which
the outbox checks when each bulk message leaves, so the rest of this campaign and every later
one skip it; it writes a `recipient.unsubscribed` event for the webhooks in the same
transaction. Both are idempotent: a second one-click POST (mail programs retry) changes
nothing. Resubscribing takes the address off the list only if it is there because its owner
unsubscribed: a hard bounce or a complaint stays.

Opens and clicks are counted only for campaigns sent while the company's tracking setting
was on; a click goes only to a link of the campaign's own list.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from postroom.campaigns.links import LinkToken, token_read
from postroom.campaigns.models import Campaign, CampaignRecipient
from postroom.contacts.models import Contact
from postroom.core.errors import NotFoundError
from postroom.outbox.models import Event, EventKind, Message, SuppressionReason
from postroom.outbox.suppression import (
    suppression_add,
    suppression_get_by_address,
    suppression_remove,
)


@dataclass(frozen=True)
class LinkTarget:
    """Whom a token names. `address` is where the campaign wrote (empty for a test)."""

    token: LinkToken
    campaign: Campaign | None
    recipient: CampaignRecipient | None
    address: str

    @property
    def is_test(self) -> bool:
        """A test send's link (no contact, or one the campaign never wrote to)."""
        return self.recipient is None


def link_target(token: str) -> LinkTarget:
    """Read a token (LinkError if forged or expired) and find what it names."""
    read = token_read(token)
    campaign = Campaign.objects.filter(pk=read.campaign_id).first()
    recipient = None
    if campaign is not None and read.contact_id:
        recipient = CampaignRecipient.objects.filter(
            campaign=campaign, contact_id=read.contact_id
        ).first()
    address = recipient.address if recipient else ""
    if not address and read.contact_id:
        contact = Contact.objects.filter(pk=read.contact_id).first()
        address = contact.email if contact else ""
    return LinkTarget(token=read, campaign=campaign, recipient=recipient, address=address)


def is_unsubscribed(target: LinkTarget) -> bool:
    if not target.address:
        return False
    entry = suppression_get_by_address(address=target.address)
    return entry is not None


def unsubscribe(target: LinkTarget, *, how: str) -> bool:
    """Suppress the address (`how`: "one-click" or "page"); True if it was not already."""
    if target.is_test or not target.address or target.campaign is None:
        return False  # a test message's link, or a contact deleted since
    now = timezone.now()
    with transaction.atomic():
        entry = suppression_add(
            actor=None,
            address=target.address,
            reason=SuppressionReason.UNSUBSCRIBED,
            source=f"unsubscribe link ({how}) of campaign {target.campaign.name}"[:200],
        )
        marked = CampaignRecipient.objects.filter(
            campaign=target.campaign, contact_id=target.token.contact_id, unsubscribed_at=None
        ).update(unsubscribed_at=now)
        if not (entry.is_new or marked):
            return False
        Event.objects.create(
            kind=EventKind.RECIPIENT_UNSUBSCRIBED,
            created_at=now,
            message=_campaign_message(target),
            recipient=target.address,
            data={
                "recipient": target.address,
                "campaign": {"id": target.campaign.pk, "name": target.campaign.name},
                "how": how,
            },
        )
    return True


def _campaign_message(target: LinkTarget) -> Message | None:
    assert target.campaign is not None
    if target.campaign.bulk_template_id is None:
        return None
    return (
        Message.objects.filter(
            bulk_template_id=target.campaign.bulk_template_id,
            recipients__address=target.address,
        )
        .order_by("id")
        .first()
    )


def resubscribe(target: LinkTarget) -> bool:
    """Take the address off the list if its owner put it there; True if it was."""
    if not target.address:
        return False
    with transaction.atomic():
        entry = suppression_get_by_address(address=target.address)
        if entry is None or entry.reason != SuppressionReason.UNSUBSCRIBED:
            return False
        suppression_remove(actor=None, suppression=entry)
        if target.campaign is not None:
            CampaignRecipient.objects.filter(
                campaign=target.campaign, contact_id=target.token.contact_id
            ).update(unsubscribed_at=None)
    return True


def _tracked(target: LinkTarget) -> CampaignRecipient:
    if target.campaign is None or not target.campaign.is_tracking or target.recipient is None:
        raise NotFoundError("Nothing is tracked for this link.")
    return target.recipient


def open_record(target: LinkTarget) -> None:
    recipient = _tracked(target)
    now = timezone.now()
    CampaignRecipient.objects.filter(pk=recipient.pk).update(open_count=F("open_count") + 1)
    CampaignRecipient.objects.filter(pk=recipient.pk, opened_at=None).update(opened_at=now)


def click_record(target: LinkTarget, *, index: int) -> str:
    """Count a click on link `index` and return where it goes."""
    recipient = _tracked(target)
    assert target.campaign is not None
    links = target.campaign.tracked_links
    if not 0 <= index < len(links):
        raise NotFoundError("This campaign has no such link.")
    now = timezone.now()
    CampaignRecipient.objects.filter(pk=recipient.pk).update(click_count=F("click_count") + 1)
    # A click shows the message was read, images shown or not.
    CampaignRecipient.objects.filter(pk=recipient.pk, clicked_at=None).update(clicked_at=now)
    CampaignRecipient.objects.filter(pk=recipient.pk, opened_at=None).update(opened_at=now)
    return str(links[index])
