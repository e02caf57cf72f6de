"""OAuth sign-ins that need someone: failing, or ending soon."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from postroom.oauth.models import OAuthConnection
from postroom.oauth.tokens import EXPIRY_WARNING


def sign_ins_in_trouble(*, owners: list[str]) -> list[OAuthConnection]:
    ends_soon = Q(refresh_expires_at__lte=timezone.now() + EXPIRY_WARNING)
    return list(
        OAuthConnection.objects.filter(owner__in=owners)
        .filter(~Q(failure="") | ends_soon)
        .order_by("owner")
    )
