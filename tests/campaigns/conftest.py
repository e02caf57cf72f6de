"""Contacts, lists, templates and campaigns for the campaign tests, made through the real
services; the campaign's job is run here as the worker's job runner runs it."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import Role, User
from postroom.audiences import services as audience_services
from postroom.audiences.models import ContactList
from postroom.campaigns.campaign_templates import TemplateFields, campaign_template_create
from postroom.campaigns.expansion import CAMPAIGN_JOB_KINDS
from postroom.campaigns.models import Campaign, CampaignTemplate
from postroom.campaigns.services import CampaignFields, campaign_create
from postroom.contacts import services as contact_services
from postroom.contacts.models import Contact
from postroom.queue.jobs import job_claim_batch
from postroom.queue.runner import JobContext, job_run
from tests.accounts.factories import admin_make, user_make

LETTER_HTML = (
    "<html><head><style>p { color: #123456; }</style></head><body>"
    "<p>Hello {{ contact.first_name or 'there' }},</p><p>Our news for {{ contact.company }}.</p>"
    "</body></html>"
)


@pytest.fixture
def marketer(db: Any) -> User:
    return user_make("mia", role=Role.MARKETER, display_name="Mia Marketer")


@pytest.fixture
def admin(db: Any) -> User:
    return admin_make("root")


def contact_make(email: str, *, consent: bool = True, **fields: Any) -> Contact:
    return contact_services.contact_create(
        actor=None, email=email, marketing_consent=consent, **fields
    )


def list_make(name: str, contacts: list[Contact]) -> ContactList:
    contact_list = audience_services.list_create(actor=None, name=name)
    audience_services.list_members_add(
        actor=None, contact_list=contact_list, contact_ids=[contact.pk for contact in contacts]
    )
    return contact_list


def template_make(html: str = LETTER_HTML, text: str = "", name: str = "News") -> CampaignTemplate:
    return campaign_template_create(
        actor=None, fields=TemplateFields(name=name, html=html, text=text)
    )


def campaign_make(
    contact_list: ContactList,
    *,
    template: CampaignTemplate | None = None,
    actor: User | None = None,
    **fields: Any,
) -> Campaign:
    template = template or template_make()
    values: dict[str, Any] = {
        "name": "Spring news",
        "subject": "News for {{ contact.first_name or 'you' }}",
        "template_id": template.pk,
        "list_ids": (contact_list.pk,),
        **fields,
    }
    return campaign_create(actor=actor, fields=CampaignFields(**values))


def job_run_here(campaign: Campaign) -> JobContext:
    """Claim the campaign's job and run it to its end in this thread (its context)."""
    campaign.refresh_from_db()
    claimed = job_claim_batch(runner="test", kinds=list(CAMPAIGN_JOB_KINDS), limit=10)
    [mine] = [item for item in claimed if item.id == campaign.job_id]
    context = JobContext(mine)
    job_run(CAMPAIGN_JOB_KINDS[mine.kind], context)
    campaign.refresh_from_db()
    return context
