"""Read the audit log, and say its entries in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from postroom.audit.models import AuditEntry

# What each recorded action says, after the actor's name ("ada changed SMTP Server
# Information"). tests/audit/test_sentences.py checks that every action Postroom records has one.
ACTION_SENTENCES = {
    "company.smtp.updated": "changed SMTP Server Information",
    "company.secrets.forgotten": "cleared the stored passwords (postroom forget-secrets)",
    "oauth.configured": "changed an OAuth sign-in's settings",
    "oauth.signed_in": "signed in with OAuth",
    "oauth.disconnected": "removed an OAuth sign-in",
    "user.created": "created a user",
    "user.updated": "changed a user",
    "user.profile_updated": "changed their own profile",
    "user.password_set": "set a user's password",
    "user.password_changed": "changed their own password",
    "user.email_change_requested": "asked to change their email address",
    "user.email_changed": "confirmed their new email address",
    "login.failed": "failed to log in",
    "login.locked": "was locked out after too many failed logins",
    "login.refused": "tried to log in while locked out",
    "login.unlocked": "unlocked a login",
    "api_key.created": "created an API key",
    "api_key.revoked": "revoked an API key",
    "webhook.endpoint.created": "added a webhook",
    "webhook.endpoint.updated": "changed a webhook",
    "webhook.endpoint.deleted": "deleted a webhook",
    "webhook.endpoint.tested": "sent a test event to a webhook",
    "webhook.endpoint.secret_rotated": "rotated a webhook's signing secret",
    "webhook.delivery.resent": "resent a webhook event",
    "contact.created": "added a contact",
    "contact.updated": "changed a contact",
    "contact.deleted": "deleted a contact",
    "contacts.imported": "imported contacts",
    "contacts.exported": "exported contacts",
    "company.created": "added a contact's company",
    "company.updated": "changed a contact's company",
    "company.deleted": "deleted a contact's company",
    "email_template.create": "saved a new email template",
    "email_template.update": "changed an email template",
    "email_template.delete": "deleted an email template",
    "inbox.delete_all": "emptied the sandbox capture",
    "campaign.created": "created a campaign",
    "campaign.changed": "changed a draft campaign",
    "campaign.deleted": "deleted a draft campaign",
    "campaign.sent": "sent (or scheduled) a campaign",
    "campaign.paused": "paused a campaign",
    "campaign.resumed": "resumed a campaign",
    "campaign.cancelled": "cancelled a campaign",
    "campaign.tested": "sent a campaign's test message",
    "campaign_template.created": "created a campaign template",
    "campaign_template.changed": "changed a campaign template",
    "campaign_template.deleted": "deleted a campaign template",
    "company.campaign_tracking": "turned campaign tracking on or off",
    "list.created": "created a list",
    "list.updated": "changed a list",
    "list.deleted": "deleted a list",
    "list.members_added": "added contacts to a list",
    "list.members_removed": "removed contacts from a list",
    "segment.created": "created a segment",
    "segment.updated": "changed a segment",
    "segment.deleted": "deleted a segment",
    "suppression.added": "added an address to the suppression list",
    "suppression.removed": "removed an address from the suppression list",
    "suppression.imported": "imported addresses into the suppression list",
    "suppression.exported": "exported the suppression list",
    "report_source.created": "connected a database for reports",
    "report_source.updated": "changed a report data source",
    "report_source.deleted": "removed a report data source",
    "report.created": "wrote a report",
    "report.updated": "changed a report",
    "report.deleted": "deleted a report",
    "report_schedule.created": "scheduled a report",
    "report_schedule.updated": "changed a report's schedule",
    "report_schedule.deleted": "deleted a report's schedule",
    "report_schedule.paused": "paused a report's schedule",
    "report_schedule.resumed": "resumed a report's schedule",
    "report_schedule.run_now": "ran a scheduled report now",
}


def audit_action_sentence(action: str) -> str:
    """What `action` says in words; the code itself for one without a sentence yet."""
    return ACTION_SENTENCES.get(action, action)


def audit_entry_list(*, action: str = "") -> QuerySet[AuditEntry]:
    """Entries newest first, optionally only one action."""
    entries = AuditEntry.objects.order_by("-at", "-id")
    if action:
        entries = entries.filter(action=action)
    return entries


def audit_action_list() -> list[tuple[str, str]]:
    """(code, sentence) of every action recorded so far, by sentence."""
    codes = set(AuditEntry.objects.values_list("action", flat=True))
    return sorted(((code, audit_action_sentence(code)) for code in codes), key=lambda a: a[1])


@dataclass(frozen=True)
class ChangeLine:
    label: str
    text: str


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if value is True:
        return "Y"
    if value is False:
        return "N"
    return str(value)


def audit_change_lines(changes: Any) -> list[ChangeLine]:
    """Turn an entry's `changes` into readable lines: "Port: 25 → 587"."""
    if not isinstance(changes, dict):
        return [ChangeLine(label="", text=str(changes))] if changes else []
    lines = []
    for label, change in changes.items():
        if isinstance(change, dict) and "secret" in change:
            text = f"{change['secret']} (the value is never recorded)"
        elif isinstance(change, dict) and ("from" in change or "to" in change):
            text = f"{_shown(change.get('from'))} → {_shown(change.get('to'))}"
        elif isinstance(change, dict) and change.get("changed") is True:
            text = "changed"
        else:
            text = _shown(change)
        lines.append(ChangeLine(label=str(label), text=text))
    return lines
