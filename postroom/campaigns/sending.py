"""What a campaign's messages are made of: sender, headers, letter, each recipient's values.

One function each for the preview, the test send, Send (which stores the result as the
outbox's immutable bulk template) and the expansion (which gives every recipient its
values), so the four never differ.

Every campaign message carries, per recipient, `List-Unsubscribe` with an HTTPS link and a
mailto (RFC 2369) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058: Gmail
and Yahoo require both of bulk senders since 2024). They are the template's merged headers,
so only campaign mail has them: Contact Email and transactional mail never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from postroom.accounts.models import User
from postroom.campaigns import links
from postroom.campaigns.audience import AudienceRow
from postroom.campaigns.letters import letter_build, letter_check
from postroom.campaigns.models import Campaign, SenderKind
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address
from postroom.mail.bulk import CompiledTemplate, compile_template
from postroom.mail.message import OutgoingEmail
from postroom.outbox.send_as import user_address, via_company

# RFC 8058 §3.1: the exact key and value the one-click POST carries.
ONE_CLICK = "List-Unsubscribe=One-Click"
LIST_UNSUBSCRIBE = "<{{ unsubscribe.url }}>, <{{ unsubscribe.mailto }}>"


@dataclass(frozen=True)
class CampaignLetter:
    from_: Address
    reply_to: tuple[Address, ...]
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    tracked_links: tuple[str, ...]

    def compiled(self) -> CompiledTemplate:
        return compile_template(
            from_=self.from_,
            reply_to=self.reply_to,
            subject_template=self.subject,
            text_template=self.text or None,
            html_template=self.html or None,
            headers=self.headers,
        )


def campaign_sender(
    *, sender_kind: str, user: User | None, company: Company
) -> tuple[Address, tuple[Address, ...]]:
    """From and Reply-To. From a user, the send-as policy decides; under "automatic" a
    campaign goes via the company, because bulk mail has no second version per message to
    switch to, and a relay refusing the user's address would pause all sending."""
    if sender_kind == SenderKind.COMPANY:
        if not company.sender_email:
            raise ValidationError(
                "The company has no email address to send from: set it under Company > SMTP "
                "Server Information, or send as a user.",
                field="sender",
            )
        return Address(company.sender_name or company.name, company.sender_email), ()
    if user is None:
        raise ValidationError("Choose the user the campaign comes from.", field="sender_user")
    own = Address(user.name, user_address(user).addr_spec)
    if company.send_as_policy == SendAsPolicy.AS_USER or not company.sender_email:
        return own, ()
    via = via_company_address(user=user, company=company)
    return via, (own,)


def via_company_address(*, user: User, company: Company) -> Address:
    own = Address(user.name, user_address(user).addr_spec)
    return via_company(OutgoingEmail(from_=own), user=user, company=company).from_


def campaign_headers(*, campaign_id: int, from_: Address) -> dict[str, str]:
    domain = from_.addr_spec.rpartition("@")[2]
    return {
        "List-Unsubscribe": LIST_UNSUBSCRIBE,
        "List-Unsubscribe-Post": ONE_CLICK,
        # Gmail's feedback loop groups complaints by this (campaign:type:domain:sender id);
        # it also makes each campaign's outbox template its own.
        "Feedback-ID": f"{campaign_id}:campaign:{domain}:postroom",
    }


def campaign_letter(campaign: Campaign, *, is_tracking: bool) -> CampaignLetter:
    """The campaign as its messages will be, before any recipient is filled in."""
    if campaign.template is None:
        raise ValidationError("Choose the campaign's template.", field="template")
    if not campaign.subject.strip():
        raise ValidationError("Write the subject.", field="subject")
    from_, reply_to = campaign_sender(
        sender_kind=campaign.sender_kind, user=campaign.sender_user, company=company_get()
    )
    return letter_make(
        campaign_id=campaign.pk or 0,
        subject=campaign.subject,
        html=campaign.template.html,
        text=campaign.template.text,
        from_=from_,
        reply_to=reply_to,
        is_tracking=is_tracking,
    )


def letter_make(
    *,
    campaign_id: int,
    subject: str,
    html: str,
    text: str,
    from_: Address,
    reply_to: tuple[Address, ...] = (),
    is_tracking: bool,
) -> CampaignLetter:
    letter_check(subject=subject, html=html, text=text)
    letter = letter_build(html=html, text=text, is_tracking=is_tracking)
    return CampaignLetter(
        from_=from_,
        reply_to=reply_to,
        subject=subject,
        html=letter.html,
        text=letter.text,
        headers=campaign_headers(campaign_id=campaign_id, from_=from_),
        tracked_links=letter.tracked_links,
    )


def preview_sender() -> tuple[Address, tuple[Address, ...]]:
    """The company as sender for a template's preview, or a stand-in before it has an
    address (the preview must work on a new install)."""
    company = company_get()
    if company.sender_email:
        return Address(company.sender_name or company.name, company.sender_email), ()
    return Address(company.name or "Your company", "marketing@example.com"), ()


def recipient_values(
    *,
    row: AudienceRow,
    company_name: str,
    links_for: links.LinkMaker,
    mailto_address: str,
    is_tracking: bool,
) -> dict[str, Any]:
    """One recipient's merge values, its signed links included."""
    token = links_for.token(row.contact_id)
    urls = links_for.links(token)
    values: dict[str, Any] = {
        "contact": {
            "first_name": row.first_name,
            "last_name": row.last_name,
            "name": row.name,
            "email": row.email,
            "company": row.company,
        },
        "company": {"name": company_name},
        "unsubscribe": {
            "url": urls.unsubscribe,
            "mailto": links.unsubscribe_mailto(address=mailto_address, token=token),
        },
    }
    if is_tracking:
        values["tracking"] = {"open": urls.open, "click": urls.click}
    return values
