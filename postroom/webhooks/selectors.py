"""Read webhooks for the pages: endpoints with their health, delivery logs, attempts."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from postroom.core.errors import NotFoundError
from postroom.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint

# Attempts shown on a delivery's page: a delivery that failed for three days has about 80
# (30 s doubling to hourly); the newest 100 cover that.
ATTEMPTS_SHOWN = 100


def endpoint_list() -> QuerySet[Endpoint]:
    """Every endpoint, with how many deliveries wait and how many gave up."""
    return (
        Endpoint.objects.select_related("created_by")
        .annotate(
            pending_count=_count_of(DeliveryStatus.PENDING),
            failed_count=_count_of(DeliveryStatus.FAILED),
        )
        .order_by("id")
    )


def _count_of(status: str) -> Coalesce:
    # A subquery per endpoint counts through the (endpoint, status) index instead of joining
    # every delivery ever made.
    counted = (
        Delivery.objects.filter(endpoint=OuterRef("pk"), status=status)
        .order_by()
        .values("endpoint")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def endpoint_get(*, pk: int) -> Endpoint:
    endpoint = Endpoint.objects.select_related("created_by").filter(pk=pk).first()
    if endpoint is None:
        raise NotFoundError(f"There is no webhook endpoint #{pk}.")
    return endpoint


def delivery_list(*, endpoint: Endpoint, status: str = "") -> QuerySet[Delivery]:
    """The endpoint's deliveries, newest first, optionally of one status."""
    deliveries = Delivery.objects.filter(endpoint=endpoint).defer("body").order_by("-id")
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    return deliveries


def delivery_get(*, pk: int) -> Delivery:
    found = Delivery.objects.select_related("endpoint").filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"There is no webhook delivery #{pk}.")
    return found


def delivery_attempt_list(*, delivery: Delivery) -> list[DeliveryAttempt]:
    return list(delivery.attempt_log.order_by("-at", "-id")[:ATTEMPTS_SHOWN])


def delivery_pending_count(*, endpoint: Endpoint) -> int:
    return Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).count()


def endpoint_previous_secret_signs(*, endpoint: Endpoint) -> bool:
    """Whether requests still carry a signature with the secret before the last rotation."""
    until = endpoint.previous_secret_until
    return bool(endpoint.previous_secret_encrypted and until and until > timezone.now())
