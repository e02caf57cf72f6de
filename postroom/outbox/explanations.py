"""What happened to a recipient's mail, in one sentence with what to do about it.

The words are the reply table's (postroom.mail.classify.explain_failure), so the Outbox says
what Check connection says; the server's own reply stays on the page, under Details.
"""

from __future__ import annotations

from collections.abc import Sequence

from postroom.mail.classify import explain_failure
from postroom.outbox.models import Attempt, Message, Recipient, RecipientStatus

# Recipients whose last attempt says something a person should read.
_EXPLAINED = (RecipientStatus.DEFERRED, RecipientStatus.UNCERTAIN, RecipientStatus.FAILED)


def recipient_explanations(*, message: Message, recipients: Sequence[Recipient]) -> dict[int, str]:
    """recipient id -> the sentence for its latest failed attempt (failed, deferred or
    uncertain recipients only). An attempt without a recipient (the connection failed)
    speaks for every recipient it came after."""
    if not any(recipient.status in _EXPLAINED for recipient in recipients):
        return {}
    latest: dict[int | None, Attempt] = {}
    for recorded in Attempt.objects.filter(message=message).order_by("at", "id"):
        latest[recorded.recipient_id] = recorded
    explanations = {}
    for recipient in recipients:
        last = _latest_of(latest.get(recipient.pk), latest.get(None))
        if recipient.status in _EXPLAINED and last is not None:
            explanations[recipient.pk] = explain_failure(
                stage=last.stage,
                classification=last.classification,
                code=last.code,
                enhanced=last.enhanced_code,
                text=last.text,
                sender=message.envelope_from,
                recipient=recipient.address,
                host=last.server.rpartition(":")[0],
            ).sentence
    return explanations


def _latest_of(*attempts: Attempt | None) -> Attempt | None:
    found = [attempt for attempt in attempts if attempt is not None]
    return max(found, key=lambda attempt: (attempt.at, attempt.pk)) if found else None
