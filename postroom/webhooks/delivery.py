"""The dispatcher's database side: fan events out, claim due deliveries, record attempts.

Plain functions over the ORM, called from the dispatcher's one database thread. They hand
the dispatcher plain data (`ClaimedDelivery`), so its event loop never touches the ORM.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Q, Subquery
from django.utils import timezone

from postroom.core.errors import SecretKeyError
from postroom.core.secrets import secret_decrypt
from postroom.outbox.models import Event
from postroom.queue.lease import claim_token_new, lease_claim
from postroom.webhooks import signing
from postroom.webhooks.models import (
    Cursor,
    CursorGap,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
)
from postroom.webhooks.retry import DEFAULT_POLICY, WebhookRetryPolicy
from postroom.webhooks.services import events_cursor_ensure

logger = logging.getLogger(__name__)

# Events fanned out per transaction: a few hundred rows keep each write short, so the outbox
# worker writing beside it on SQLite never waits long for the lock.
FAN_OUT_BATCH = 500
# How long an id below the checkpoint that has not appeared is waited for. Only an open
# transaction can still bring it; Postroom's longest (a bulk enqueue) lasts seconds to
# minutes, and a rolled-back one leaves a hole that never fills.
GAP_WAIT = dt.timedelta(hours=1)
# The most holes noted in one fan-out: as many ids as the largest single import
# (100,000 rows) could hold open in one transaction. A wider jump of the id sequence (an
# ALTER SEQUENCE, a restored backup) is taken as a jump, not as that many missing events.
MAX_NEW_GAPS = 100_000
# A claimed delivery is the dispatcher's for this long: the 10 s request timeout plus ample
# time to record the outcome. A crashed dispatcher's deliveries are due again after it.
LEASE = dt.timedelta(seconds=60)
# What is kept of a failing answer's body, for people to read: 200 characters hold a
# receiver's one-line reason ("database is down", a small JSON error) but not a page of
# whatever the URL serves, so an endpoint cannot be used to read another service's answers.
# A successful answer's body is not kept at all: 2xx says all there is to know.
RESPONSE_EXCERPT_CHARS = 200
EXCERPT_CUT_MARK = " […]"  # ends an excerpt whose body went on
_EXCERPT_STORED_CHARS = RESPONSE_EXCERPT_CHARS + len(EXCERPT_CUT_MARK)
ERROR_MAX_CHARS = 500


# --- fan-out -------------------------------------------------------------------------------


def events_fan_out(*, limit: int = FAN_OUT_BATCH, now: dt.datetime | None = None) -> int:
    """Turn up to `limit` new events into deliveries; return how many events were handled.

    The deliveries and the checkpoint advance commit together, and the advance is a
    conditional UPDATE on the cursor's version: of two dispatchers fanning out the same
    events, one writes and the other writes nothing. So no event is fanned out twice, and a
    crash at any point leaves either all of a batch or none of it.
    """
    now = now or timezone.now()
    cursor = events_cursor_ensure()
    # Events are read before endpoints: an endpoint created after the read gets none of
    # them, and it should not, as they happened before it existed.
    newest = Event.objects.aggregate(newest=Max("id"))["newest"] or 0
    if not Endpoint.objects.filter(is_active=True).exists():
        _skip_to(cursor, newest, now=now)  # no one to tell: the events need not be read
        return 0
    new_events = list(Event.objects.filter(id__gt=cursor.last_event_id).order_by("id")[:limit])
    late_events = list(
        Event.objects.filter(id__in=Subquery(CursorGap.objects.values("event_id"))).order_by("id")
    )
    endpoints = list(Endpoint.objects.filter(is_active=True))
    expired = CursorGap.objects.filter(noted_at__lt=now - GAP_WAIT)
    has_expired = expired.exists()
    if not new_events and not late_events and not has_expired:
        return 0
    high = new_events[-1].id if new_events else cursor.last_event_id
    new_gaps = _holes(cursor.last_event_id, high, {event.id for event in new_events})
    deliveries = [
        _delivery_for(event, endpoint, now=now)
        for event in [*late_events, *new_events]
        for endpoint in endpoints
        # An endpoint gets the events that happen after it was created, not the history.
        if endpoint.subscribes_to(event.kind) and event.created_at >= endpoint.created_at
    ]
    with transaction.atomic():
        advanced = Cursor.objects.filter(pk=cursor.pk, version=cursor.version).update(
            last_event_id=high, version=F("version") + 1, updated_at=now
        )
        if not advanced:
            return 0  # another dispatcher fanned these out meanwhile
        if late_events:
            CursorGap.objects.filter(event_id__in=[event.id for event in late_events]).delete()
        if has_expired:
            given_up, _ = expired.delete()
            # Expected after a rolled-back transaction; worth a line when it is not that.
            logger.info("Webhooks: %d event ids never appeared within %s", given_up, GAP_WAIT)
        CursorGap.objects.bulk_create(
            CursorGap(event_id=event_id, noted_at=now) for event_id in new_gaps
        )
        Delivery.objects.bulk_create(deliveries)
    return len(new_events) + len(late_events)


def _skip_to(cursor: Cursor, newest: int, *, now: dt.datetime) -> None:
    """Move the checkpoint to `newest` and forget the holes: nothing below it is for anyone."""
    if newest <= cursor.last_event_id and not CursorGap.objects.exists():
        return
    with transaction.atomic():
        advanced = Cursor.objects.filter(pk=cursor.pk, version=cursor.version).update(
            last_event_id=max(newest, cursor.last_event_id),
            version=F("version") + 1,
            updated_at=now,
        )
        if advanced:
            CursorGap.objects.all().delete()


def _holes(low: int, high: int, seen: set[int]) -> list[int]:
    """The ids in (low, high) not seen: events of transactions still open (or rolled back)."""
    # `seen` holds `high` itself, so the holes number high - low - len(seen).
    if high - low - len(seen) > MAX_NEW_GAPS:
        logger.warning(
            "Webhooks: event ids jumped from %d to %d; not waiting for the ids between", low, high
        )
        return []
    return [event_id for event_id in range(low + 1, high) if event_id not in seen]


def _delivery_for(event: Event, endpoint: Endpoint, *, now: dt.datetime) -> Delivery:
    webhook_id = f"evt_{event.pk}"
    return Delivery(
        endpoint=endpoint,
        event=event,
        event_type=event.kind,
        webhook_id=webhook_id,
        body=signing.payload_body(
            webhook_id=webhook_id,
            event_type=event.kind,
            created_at=event.created_at,
            data=event.data,
        ),
        next_attempt_at=now,
        created_at=now,
    )


# --- claim ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a dispatcher holds: what it needs to post it, as plain data."""

    id: int
    endpoint_id: int
    url: str
    webhook_id: str
    body: str
    claim_token: str
    created_at: dt.datetime
    consecutive_failures: int
    # The endpoint's "Allow an internal address": its request may go to such an address.
    is_internal_allowed: bool = False
    # HMAC keys, the current secret's first (then the previous one, within its grace).
    # Kept out of the repr, so a logged or printed delivery never shows them.
    keys: tuple[bytes, ...] = field(repr=False, default=())
    # Set when the stored secret cannot be decrypted: the delivery fails with this.
    key_error: str = ""


def delivery_claim_batch(
    *,
    limit: int,
    per_endpoint: int,
    busy: Mapping[int, int] | None = None,
    now: dt.datetime | None = None,
) -> list[ClaimedDelivery]:
    """Take up to `limit` due deliveries, at most `per_endpoint` in flight per endpoint.

    `busy` counts what this dispatcher already holds per endpoint. The cap keeps a dead
    endpoint (each request waiting out its timeout) from holding every slot while the
    others' events wait. The claim is the outbox's (postroom.queue.lease): on PostgreSQL
    `FOR UPDATE SKIP LOCKED`, on SQLite an IMMEDIATE transaction, and the UPDATE repeats the
    due condition.
    """
    now = now or timezone.now()
    token = claim_token_new()
    due = Delivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    ).order_by("next_attempt_at", "id")
    # A plain read first: on SQLite the claim's transaction takes the write lock, which the
    # outbox worker needs too, and most rounds find nothing due.
    if not due.exists():
        return []
    with transaction.atomic():
        claimed = lease_claim(
            due,
            limit=limit,
            recheck=Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now),
            claim={"next_attempt_at": now + LEASE, "claim_token": token},
            choose=partial(
                _within_endpoint_caps, limit=limit, per_endpoint=per_endpoint, busy=busy
            ),
            choose_fields=("endpoint_id",),
            # Look a little past `limit`, so one busy endpoint does not hide the others' work.
            look_ahead=8,
        )
        if not claimed:
            return []
        rows = list(
            Delivery.objects.filter(claim_token=token)
            .select_related("endpoint")
            .order_by("next_attempt_at", "id")
        )
    return _claimed_deliveries(rows, token=token, now=now)


def _within_endpoint_caps(
    candidates: list[tuple[Any, ...]],
    *,
    limit: int,
    per_endpoint: int,
    busy: Mapping[int, int] | None,
) -> list[int]:
    """The first `limit` candidates (pk, endpoint id) that keep each endpoint within its cap."""
    taken: Counter[int] = Counter(busy or {})
    ids: list[int] = []
    for pk, endpoint_id in candidates:
        if len(ids) >= limit:
            break
        if taken[endpoint_id] < per_endpoint:
            taken[endpoint_id] += 1
            ids.append(pk)
    return ids


def _claimed_deliveries(
    rows: list[Delivery], *, token: str, now: dt.datetime
) -> list[ClaimedDelivery]:
    keys: dict[int, tuple[tuple[bytes, ...], str]] = {}
    claimed = []
    for row in rows:
        if row.endpoint_id not in keys:
            keys[row.endpoint_id] = _keys_of(row.endpoint, now=now)
        endpoint_keys, key_error = keys[row.endpoint_id]
        claimed.append(
            ClaimedDelivery(
                id=row.pk,
                endpoint_id=row.endpoint_id,
                url=row.endpoint.url,
                webhook_id=row.webhook_id,
                body=row.body,
                claim_token=token,
                created_at=row.created_at,
                consecutive_failures=row.consecutive_failures,
                is_internal_allowed=row.endpoint.is_internal_allowed,
                keys=endpoint_keys,
                key_error=key_error,
            )
        )
    return claimed


def _keys_of(endpoint: Endpoint, *, now: dt.datetime) -> tuple[tuple[bytes, ...], str]:
    tokens = [endpoint.secret_encrypted]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_until
        and endpoint.previous_secret_until > now
    ):
        tokens.append(endpoint.previous_secret_encrypted)
    try:
        return tuple(signing.secret_key(secret_decrypt(token)) for token in tokens), ""
    except SecretKeyError:
        return (), (
            "The endpoint's signing secret cannot be decrypted with this secret key. Rotate "
            "the secret on the Webhooks page and give the receiver the new one."
        )


def delivery_next_due_at() -> dt.datetime | None:
    """When the next delivery becomes due, so an idle dispatcher sleeps just that long."""
    return (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__is_active=True)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


# --- record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostOutcome:
    """What one POST gave: a status code (and a failing answer's start), or an error."""

    at: dt.datetime
    duration_ms: int
    status_code: int | None = None
    response_excerpt: str = ""
    error: str = ""
    retry_after: dt.timedelta | None = None

    @property
    def is_success(self) -> bool:
        # Standard Webhooks: 2xx is success; anything else, a redirect included, a failure.
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_record(
    *,
    claimed: ClaimedDelivery,
    outcome: PostOutcome,
    now: dt.datetime | None = None,
    policy: WebhookRetryPolicy = DEFAULT_POLICY,
) -> str | None:
    """Record one attempt; return the delivery's new status (None if it is gone)."""
    now = now or timezone.now()
    # The dispatcher clipped the excerpt already; this bounds what any caller can store.
    excerpt = "" if outcome.is_success else outcome.response_excerpt[:_EXCERPT_STORED_CHARS]
    error = outcome.error[:ERROR_MAX_CHARS]
    if outcome.is_success:
        status, next_attempt_at, failures = DeliveryStatus.SUCCEEDED, None, 0
    else:
        failures = claimed.consecutive_failures + 1
        next_attempt_at = policy.next_attempt_at(
            failed_attempts=failures,
            created_at=claimed.created_at,
            now=now,
            retry_after=outcome.retry_after,
        )
        status = DeliveryStatus.PENDING if next_attempt_at else DeliveryStatus.FAILED
        if next_attempt_at is None:
            error = f"{error} Gave up: no success in {_days(policy.give_up_after)}.".strip()
    with transaction.atomic():
        if not Delivery.objects.filter(pk=claimed.id).exists():
            return None  # its endpoint was deleted while the request was in flight
        DeliveryAttempt.objects.create(
            delivery_id=claimed.id,
            at=outcome.at,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            response_excerpt=excerpt,
            error=error,
            is_success=outcome.is_success,
        )
        # Only the holder of the claim moves the delivery on: if the lease ran out and another
        # dispatcher took it, or someone pressed Resend, their attempt decides.
        Delivery.objects.filter(pk=claimed.id, claim_token=claimed.claim_token).update(
            status=status,
            attempts=F("attempts") + 1,
            consecutive_failures=failures,
            next_attempt_at=next_attempt_at,
            claim_token="",
            last_status_code=outcome.status_code,
            last_response=excerpt,
            last_error=error,
            updated_at=now,
        )
        _endpoint_health_record(claimed.endpoint_id, outcome)
    return status


def _endpoint_health_record(endpoint_id: int, outcome: PostOutcome) -> None:
    """The endpoint's last attempt, and since when it fails (the Webhooks list warns)."""
    endpoint = Endpoint.objects.filter(pk=endpoint_id)
    endpoint.update(
        last_attempt_at=outcome.at,
        last_attempt_ok=outcome.is_success,
        last_status_code=outcome.status_code,
    )
    if outcome.is_success:
        endpoint.update(failing_since=None)
    else:
        endpoint.filter(failing_since__isnull=True).update(failing_since=outcome.at)


def response_excerpt_clip(text: str, *, has_more: bool = False) -> str:
    """At most `RESPONSE_EXCERPT_CHARS` of a failing answer, marked when it was cut."""
    if len(text) > RESPONSE_EXCERPT_CHARS or has_more:
        return text[:RESPONSE_EXCERPT_CHARS] + EXCERPT_CUT_MARK
    return text


def _days(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days != 1 else "1 day"
