"""What administrators do with webhooks: endpoints, secrets, test pings and resends.

A signing secret exists in plaintext only in the return value of `endpoint_create` and
`endpoint_secret_rotate` (the page shows it once); it is stored encrypted and never logged,
audited, or put in an exception.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_encrypt
from postroom.outbox.models import Event, EventKind
from postroom.webhooks import signing, wake
from postroom.webhooks.models import PING, Cursor, Delivery, DeliveryStatus, Endpoint
from postroom.webhooks.targets import (
    ALLOW_INTERNAL_LABEL,
    Resolve,
    TargetLookupError,
    system_resolve,
    target_addresses,
)

URL_MAX_LENGTH = 2000  # Endpoint.url; browsers and servers commonly accept about this much
DESCRIPTION_MAX_LENGTH = 200  # Endpoint.description
# After a rotation the old secret still signs for this long, unless the administrator stops
# it at once (a leaked secret): a day lets a receiver's next deploy pick up the new one.
PREVIOUS_SECRET_GRACE = dt.timedelta(hours=24)

EVENT_TYPES: tuple[str, ...] = tuple(EventKind.values)
SECRET_LABEL = "Signing secret"  # noqa: S105 - a label, not a secret


# --- validation --------------------------------------------------------------------------


def endpoint_url_clean(url: str) -> str:
    url = url.strip()
    if not url:
        raise ValidationError("Enter the URL Postroom should post events to.", field="url")
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(
            f"The URL is {len(url):,} characters; the limit is {URL_MAX_LENGTH:,}.", field="url"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValidationError("This is not a valid URL.", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(
            "Use an http:// or https:// URL (https:// keeps the events private on the way).",
            field="url",
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Leave user names and passwords out of the URL: they would be stored and shown "
            "in plain text. The signature proves to the receiver that a request is Postroom's.",
            field="url",
        )
    if parts.fragment:
        raise ValidationError("Remove the #… part: it is never sent to the server.", field="url")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise ValidationError(
            "This is not a valid URL: it needs a host name or IP address, such as "
            "https://erp.example.com/hooks/postroom.",
            field="url",
        ) from None
    return url


def endpoint_target_check(
    *, url: str, is_internal_allowed: bool, resolve: Resolve = system_resolve
) -> None:
    """Refuse a URL whose host is, or resolves to, an address webhooks may not go to.

    A name that does not resolve yet is accepted (its DNS record may come later): each
    connection checks the addresses again anyway, so this check is for telling the
    administrator now, not the safeguard.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        target_addresses(
            parts.hostname or "", port, is_internal_allowed=is_internal_allowed, resolve=resolve
        )
    except TargetLookupError:
        return


def endpoint_event_types_clean(*, all_events: bool, event_types: Sequence[str]) -> list[str]:
    """The chosen event types in a stable order; empty when `all_events`."""
    if all_events:
        return []
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(
            f"Unknown event type {', '.join(unknown)}; choose among {', '.join(EVENT_TYPES)}.",
            field="event_types",
        )
    chosen = [kind for kind in EVENT_TYPES if kind in event_types]
    if not chosen:
        raise ValidationError("Choose at least one event type, or all events.", field="event_types")
    return chosen


def _description_clean(description: str) -> str:
    description = " ".join(description.split())
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ValidationError(
            f"Keep the description under {DESCRIPTION_MAX_LENGTH} characters.",
            field="description",
        )
    return description


def _events_label(endpoint: Endpoint) -> str:
    return "all events" if endpoint.all_events else ", ".join(endpoint.event_types)


def _audited_fields(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "URL": endpoint.url,
        "Description": endpoint.description,
        "Events": _events_label(endpoint),
        "Active": endpoint.is_active,
        ALLOW_INTERNAL_LABEL: endpoint.is_internal_allowed,
    }


def _subject(endpoint: Endpoint) -> str:
    return f"webhook endpoint #{endpoint.pk} {endpoint.url}"


# --- endpoints -----------------------------------------------------------------------------


def events_cursor_ensure() -> Cursor:
    """The fan-out checkpoint, created at the newest event the first time it is needed.

    Created when the first endpoint is (and by the dispatcher), so webhooks start with the
    events that happen from then on, not with the whole history of the outbox.
    """
    cursor = Cursor.objects.filter(name="events").first()
    if cursor is not None:
        return cursor
    newest = Event.objects.aggregate(newest=Max("id"))["newest"] or 0
    try:
        with transaction.atomic():
            return Cursor.objects.create(name="events", last_event_id=newest)
    except IntegrityError:  # another process created it first
        return Cursor.objects.get(name="events")


def endpoint_create(
    *,
    actor: User | None,
    url: str,
    description: str = "",
    all_events: bool = True,
    event_types: Sequence[str] = (),
    is_internal_allowed: bool = False,
    resolve: Resolve = system_resolve,
) -> tuple[Endpoint, str]:
    """Register an endpoint; return it and its signing secret, which is shown only now."""
    url = endpoint_url_clean(url)
    types = endpoint_event_types_clean(all_events=all_events, event_types=event_types)
    endpoint_target_check(url=url, is_internal_allowed=is_internal_allowed, resolve=resolve)
    secret = signing.secret_generate()
    events_cursor_ensure()
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            url=url,
            description=_description_clean(description),
            all_events=all_events,
            event_types=types,
            is_internal_allowed=is_internal_allowed,
            secret_encrypted=secret_encrypt(secret),
            created_by=actor,
            created_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action="webhook.endpoint.created",
            subject=_subject(endpoint),
            changes={
                "URL": {"to": url},
                "Events": {"to": _events_label(endpoint)},
                ALLOW_INTERNAL_LABEL: {"to": is_internal_allowed},
                SECRET_LABEL: {"changed": True, "secret": "set"},
            },
        )
    return endpoint, secret


def endpoint_update(
    *,
    actor: User | None,
    endpoint: Endpoint,
    url: str,
    description: str,
    all_events: bool,
    event_types: Sequence[str],
    is_active: bool,
    is_internal_allowed: bool,
    resolve: Resolve = system_resolve,
) -> Endpoint:
    new_values: dict[str, Any] = {
        "url": endpoint_url_clean(url),
        "description": _description_clean(description),
        "all_events": all_events,
        "event_types": endpoint_event_types_clean(all_events=all_events, event_types=event_types),
        "is_active": is_active,
        "is_internal_allowed": is_internal_allowed,
    }
    # Checked even when the URL is unchanged: its name may resolve elsewhere by now.
    endpoint_target_check(
        url=new_values["url"], is_internal_allowed=is_internal_allowed, resolve=resolve
    )
    before = _audited_fields(endpoint)
    for name, value in new_values.items():
        setattr(endpoint, name, value)
    after = _audited_fields(endpoint)
    changes = {
        label: {"from": before[label], "to": after[label]}
        for label in before
        if before[label] != after[label]
    }
    if not changes:
        return endpoint
    with transaction.atomic():
        endpoint.save()
        audit_record(
            actor=actor,
            action="webhook.endpoint.updated",
            subject=_subject(endpoint),
            changes=changes,
        )
    if endpoint.is_active:
        transaction.on_commit(wake.notify_dispatchers)  # deliveries held while it was off
    return endpoint


def endpoint_secret_rotate(
    *, actor: User | None, endpoint: Endpoint, keep_previous: bool = True
) -> str:
    """Give the endpoint a new secret and return it (shown once).

    With `keep_previous`, requests carry a signature with each secret for
    `PREVIOUS_SECRET_GRACE`, so the receiver can switch without rejecting anything; without
    it (the old secret leaked) the old one stops signing at once.
    """
    secret = signing.secret_generate()
    now = timezone.now()
    if keep_previous:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_until = now + PREVIOUS_SECRET_GRACE
    else:
        endpoint.previous_secret_encrypted = ""
        endpoint.previous_secret_until = None
    endpoint.secret_encrypted = secret_encrypt(secret)
    with transaction.atomic():
        endpoint.save(
            update_fields=[
                "secret_encrypted",
                "previous_secret_encrypted",
                "previous_secret_until",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action="webhook.endpoint.secret_rotated",
            subject=_subject(endpoint),
            changes={
                SECRET_LABEL: {"changed": True, "secret": "replaced"},
                "Old secret still signs until": {
                    "to": endpoint.previous_secret_until.isoformat(timespec="seconds")
                    if endpoint.previous_secret_until
                    else "stopped at once"
                },
            },
        )
    return secret


def endpoint_delete(*, actor: User | None, endpoint: Endpoint) -> None:
    """Delete the endpoint with its delivery log; pending deliveries are not sent."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook.endpoint.deleted",
            subject=_subject(endpoint),
            changes={"URL": {"from": endpoint.url, "to": None}},
        )
        endpoint.delete()


def endpoint_send_test(*, actor: User | None, endpoint: Endpoint) -> Delivery:
    """Queue a `ping` delivery to the endpoint now, whatever it subscribes to."""
    if not endpoint.is_active:
        raise ValidationError(
            "This endpoint is turned off: turn it on (Edit) before sending it a test event."
        )
    now = timezone.now()
    webhook_id = f"ping_{uuid.uuid4().hex}"
    body = signing.payload_body(
        webhook_id=webhook_id,
        event_type=PING,
        created_at=now,
        data={
            "endpoint_id": endpoint.pk,
            "message": "A test event from Postroom: this endpoint receives its webhooks.",
        },
    )
    with transaction.atomic():
        delivery = Delivery.objects.create(
            endpoint=endpoint,
            event_type=PING,
            webhook_id=webhook_id,
            body=body,
            next_attempt_at=now,
            created_at=now,
        )
        audit_record(
            actor=actor,
            action="webhook.endpoint.tested",
            subject=_subject(endpoint),
            changes={"Test event": {"to": webhook_id}},
        )
        transaction.on_commit(wake.notify_dispatchers)
    return delivery


def delivery_resend(*, actor: User | None, delivery: Delivery) -> Delivery:
    """Post the delivery again now, with the same id and body (a receiver can dedupe).

    The backoff starts over; the three-day limit still counts from the event, so a delivery
    that gave up gets this one more attempt.
    """
    if not delivery.endpoint.is_active:
        raise ValidationError(
            "This endpoint is turned off: turn it on (Edit) before resending its deliveries."
        )
    now = timezone.now()
    with transaction.atomic():
        # A delivery a dispatcher holds right now (a live lease) must finish first: taking it
        # back would throw away the outcome of the request in flight.
        changed = (
            Delivery.objects.filter(pk=delivery.pk)
            .filter(Q(claim_token="") | Q(next_attempt_at__lte=now))
            .update(
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                claim_token="",
                consecutive_failures=0,
            )
        )
        if not changed:
            raise ValidationError(
                "This delivery is being posted right now; wait a few seconds for the attempt "
                "to finish, then resend."
            )
        audit_record(
            actor=actor,
            action="webhook.delivery.resent",
            subject=_subject(delivery.endpoint),
            changes={"Resent": {"to": f"{delivery.webhook_id} ({delivery.event_type})"}},
        )
        transaction.on_commit(wake.notify_dispatchers)
    delivery.refresh_from_db()
    return delivery
