"""API keys: create, revoke, authenticate, rate-limit, and what a key may send as.

A key reads `pr_<prefix>_<secret>`. The prefix (8 hex digits) is public: it finds the row
and is shown on the keys page so people can tell keys apart. The secret is 32 bytes from
the OS CSPRNG. Only the SHA-256 of the whole key is stored.

Why SHA-256 and not PBKDF2 (as for passwords): key stretching buys time against guessing a
low-entropy secret a person chose. A 256-bit random secret cannot be guessed from its hash
at any hash speed, so stretching would add nothing but cost — PBKDF2 at Django's 1,000,000
rounds would spend most of a second of CPU on every API request.

The key itself is never logged, stored, put in an audit entry or shown again after the
page that created it.

A web process remembers a key it has checked for AUTH_CACHE_SECONDS, by the key's SHA-256, so
that a busy client's calls do not each read the key's row: revoking a key stops it at once in
the process that revoked it, and within AUTH_CACHE_SECONDS in every other one (docs/api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from postroom.accounts.models import ApiKey, ApiScope, User
from postroom.audit.services import audit_record
from postroom.core.errors import (
    NotFoundError,
    PermissionDeniedError,
    PostroomError,
    ValidationError,
)
from postroom.mail.addresses import parse_address

KEY_PREFIX = "pr"
# 4 bytes = 8 hex digits: enough to tell keys apart on a page and find the row; a
# collision (likely only past tens of thousands of keys) is retried with a new prefix.
PREFIX_BYTES = 4
# 32 bytes = 256 bits, as Python's `secrets` documentation recommends for tokens.
SECRET_BYTES = 32
_KEY_FORMAT = re.compile(
    rf"{KEY_PREFIX}_([0-9a-f]{{{PREFIX_BYTES * 2}}})_([A-Za-z0-9_-]{{20,100}})"
)

NAME_MAX_LENGTH = 100  # ApiKey.name
# 600 a minute (10 a second, sustained) carries an ERP's batch runs and stops a runaway
# loop long before it floods the outbox. Administrators can set each key's own.
DEFAULT_RATE_LIMIT_PER_MINUTE = 600
# 100,000 a minute is more than one Postroom web process can answer; higher means no limit.
MAX_RATE_LIMIT_PER_MINUTE = 100_000
RATE_WINDOW_SECONDS = 60
# Allowed From addresses per key: a few role addresses (invoices@, noreply@) is the use.
MAX_ALLOWED_FROM = 50

COMPANY = "company"  # the `from` value that means the company's sender address

# How long a process trusts a key it has checked without reading its row again: the bound on
# how late a revocation made by another process (another web process, another host) is
# obeyed. A few seconds spare the lookup on nearly every call of a busy key (hundreds a
# second) and are shorter than any human revoking a key would notice.
AUTH_CACHE_SECONDS = 5.0
# Keys remembered per process; a deployment has tens of keys, so this bound is only reached
# by someone presenting many valid keys, and then the memory is simply started afresh.
AUTH_CACHE_SIZE = 1000


class UnauthenticatedError(PostroomError):
    code = "unauthenticated"
    http_status = 401


class MissingScopeError(PermissionDeniedError):
    code = "missing_scope"


class SenderNotAllowedError(PermissionDeniedError):
    code = "sender_not_allowed"


class RateLimitedError(PostroomError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class _Checked:
    """A key found valid, and until when (time.monotonic()) this process trusts that."""

    api_key: ApiKey
    until: float


# By the key's SHA-256, which is also ApiKey.key_hash: revoking can forget it without the key.
# Only SHA-256 digests of presented keys go in, so a client cannot steer the lookups.
_checked: dict[str, _Checked] = {}
_checked_lock = threading.Lock()


def _checked_forget(key_hash: str) -> None:
    with _checked_lock:
        _checked.pop(key_hash, None)


# --- administrators --------------------------------------------------------------------


def api_key_allowed_from_clean(values: Sequence[str]) -> list[str]:
    """Validate and normalise a list of From addresses (bare addr-specs, de-duplicated)."""
    cleaned: list[str] = []
    for index, value in enumerate(values, start=1):
        if not value.strip():
            continue
        label = f"Allowed From address {index}"
        address = parse_address(value, label=label, field="allowed_from")
        owner = User.objects.filter(email__iexact=address.addr_spec).first()
        if owner is not None:
            # Mail the key sends from it would be stored as that user's, and the key could
            # read that user's mail: choose the user as the key's user instead.
            raise ValidationError(
                f"{label}: {address.addr_spec} is the address of the user {owner.name}. To send "
                "as them, choose them as the key's user; an allowed From address is a role "
                "address such as invoices@ that no user has.",
                field="allowed_from",
            )
        if address.addr_spec.lower() not in (known.lower() for known in cleaned):
            cleaned.append(address.addr_spec)
    if len(cleaned) > MAX_ALLOWED_FROM:
        raise ValidationError(
            f"List at most {MAX_ALLOWED_FROM} From addresses on one key.", field="allowed_from"
        )
    return cleaned


def _name_clean(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name, such as the system that uses it.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Use at most {NAME_MAX_LENGTH} characters.", field="name")
    return name


def _scopes_check(scopes: Sequence[str]) -> None:
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ValidationError(f"Unknown scope {unknown[0]!r}.", field="scopes")
    if not scopes:
        raise ValidationError("Choose at least one scope.", field="scopes")


def api_key_create(
    *,
    actor: User,
    name: str,
    scopes: Sequence[str],
    sender_user: User | None = None,
    allowed_from: Sequence[str] = (),
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE,
) -> tuple[ApiKey, str]:
    """Create a key; return it and the full key, which exists nowhere else from now on."""
    name = _name_clean(name)
    _scopes_check(scopes)
    if not 1 <= rate_limit_per_minute <= MAX_RATE_LIMIT_PER_MINUTE:
        raise ValidationError(
            f"The rate limit is 1 to {MAX_RATE_LIMIT_PER_MINUTE:,} requests a minute.",
            field="rate_limit_per_minute",
        )
    if sender_user is not None and not sender_user.email:
        raise ValidationError(
            f"{sender_user.username} has no email address, so a key cannot send as them; "
            "add one under Users first.",
            field="sender_user",
        )
    cleaned_from = api_key_allowed_from_clean(allowed_from)
    ordered_scopes = [scope for scope in ApiScope.values if scope in scopes]
    for _ in range(5):  # a prefix collision is rare; five in a row means something is broken
        prefix = secrets.token_hex(PREFIX_BYTES)
        key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    name=name,
                    prefix=prefix,
                    key_hash=api_key_hash(key),
                    scopes=ordered_scopes,
                    sender_user=sender_user,
                    allowed_from=cleaned_from,
                    rate_limit_per_minute=rate_limit_per_minute,
                    created_by=actor,
                )
                audit_record(
                    actor=actor,
                    action="api_key.created",
                    subject=f"API key {name} ({prefix})",
                    changes={
                        "Scopes": {"to": ", ".join(ordered_scopes)},
                        "Sender restriction": {"to": api_key_sender_summary(api_key)},
                        "Rate limit per minute": {"to": rate_limit_per_minute},
                    },
                )
        except IntegrityError:
            continue
        return api_key, key
    raise RuntimeError("Could not find a free API key prefix after 5 tries")


def api_key_revoke(*, actor: User, api_key: ApiKey) -> ApiKey:
    """Revoke a key for good. The row stays, so its name and history keep their meaning."""
    with transaction.atomic():
        changed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor
        )
        if not changed:
            raise ValidationError("This key was already revoked.")
        audit_record(
            actor=actor,
            action="api_key.revoked",
            subject=f"API key {api_key.name} ({api_key.prefix})",
            changes={"Revoked": {"from": False, "to": True}},
        )
        # Forgotten now, and again once committed: another request of this process may have
        # read the row, still active, in between.
        _checked_forget(api_key.key_hash)
        transaction.on_commit(lambda: _checked_forget(api_key.key_hash))
    api_key.refresh_from_db()
    return api_key


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("sender_user", "created_by").order_by(
        F("revoked_at").asc(nulls_first=True), "-created_at", "-id"
    )


def api_key_get(*, pk: int) -> ApiKey:
    api_key = ApiKey.objects.select_related("sender_user").filter(pk=pk).first()
    if api_key is None:
        raise NotFoundError(f"There is no API key #{pk}.")
    return api_key


def api_key_sender_summary(api_key: ApiKey) -> str:
    """How the keys page and the audit log describe a key's sender restriction."""
    if not api_key.is_sender_restricted:
        return "the company or any user"
    parts = []
    if api_key.sender_user is not None:
        parts.append(f"user {api_key.sender_user.username}")
    parts.extend(api_key.allowed_from)
    return "only " + ", ".join(parts)


# --- requests --------------------------------------------------------------------------


def api_key_authenticate(*, key: str, now: float | None = None) -> ApiKey:
    """The active key `key` is, or UnauthenticatedError (wrong, malformed or revoked).

    A key this process found valid less than AUTH_CACHE_SECONDS ago (`now` is
    time.monotonic()) is not read again; the ApiKey returned is then shared by the requests
    of those seconds, and read only.
    """
    key = key.strip()
    match = _KEY_FORMAT.fullmatch(key)
    if match is None:
        raise UnauthenticatedError(
            "The API key is malformed: send the whole key, pr_<prefix>_<secret>, as "
            "'Authorization: Bearer <key>'."
        )
    key_hash = api_key_hash(key)
    now = time.monotonic() if now is None else now
    checked = _checked.get(key_hash)
    if checked is not None and now < checked.until:
        return checked.api_key
    api_key = ApiKey.objects.select_related("sender_user").filter(prefix=match.group(1)).first()
    # compare_digest: the time taken must not tell how much of the hash matched.
    if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash):
        raise UnauthenticatedError("This API key is not known; check that it was copied whole.")
    if api_key.revoked_at is not None:
        _checked_forget(key_hash)
        raise UnauthenticatedError(
            f"This API key was revoked on {api_key.revoked_at:%Y-%m-%d}; ask an "
            "administrator for a new one."
        )
    with _checked_lock:
        if len(_checked) >= AUTH_CACHE_SIZE:
            _checked.clear()
        _checked[key_hash] = _Checked(api_key, now + AUTH_CACHE_SECONDS)
    return api_key


def api_key_require_scope(*, api_key: ApiKey, scope: ApiScope) -> None:
    if not api_key.has_scope(scope):
        raise MissingScopeError(
            f"This API key lacks the {scope.value!r} scope ({scope.label.lower()}); an "
            "administrator can create a key that has it on the API keys page."
        )


def api_key_count_request(*, api_key: ApiKey, now: Any = None) -> None:
    """Count one request against the key's per-minute limit; RateLimitedError when over.

    A fixed window per minute, counted in the database so every web process shares it.
    Most requests cost one single-row UPDATE. `last_used_at` is written only when a new
    window starts, so at most once a minute per key.
    """
    now = now or timezone.now()
    window = math.floor(now.timestamp()) // RATE_WINDOW_SECONDS
    for _ in range(2):  # the second round covers another request starting the window first
        if _count_in_window(api_key.pk, window):
            return
        keys = ApiKey.objects.filter(pk=api_key.pk)
        started = keys.exclude(rate_window=window).update(
            rate_window=window, rate_count=1, last_used_at=now
        )
        if started:
            return
    retry_after = (window + 1) * RATE_WINDOW_SECONDS - math.floor(now.timestamp())
    raise RateLimitedError(
        f"This API key may make {api_key.rate_limit_per_minute} requests a minute; wait "
        f"{retry_after} s (Retry-After) and try again.",
        retry_after=max(1, retry_after),
    )


def _count_in_window(pk: int, window: int) -> bool:
    """Count one request in the key's current window, unless it is full: the one statement
    of nearly every API request. Written out once, because the ORM would spend three times
    as long building it as the database spends running it (≈ 420 vs 100 µs)."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_IN_WINDOW, [pk, window])
        return bool(cursor.rowcount)


# ApiKey's table and columns; plain identifiers, the same in SQLite, PostgreSQL and MySQL.
_COUNT_IN_WINDOW = (
    "UPDATE accounts_apikey SET rate_count = rate_count + 1"
    " WHERE id = %s AND rate_window = %s AND rate_count < rate_limit_per_minute"
)


def api_key_check_sender(
    *, api_key: ApiKey, user: User | None, address: str, is_company: bool
) -> None:
    """Raise SenderNotAllowedError unless `api_key` may send as `user` / from `address`.

    Unrestricted keys send as the company or as any user; another address must be listed
    on the key (a role address such as invoices@), which makes the key restricted.
    """
    if not api_key.is_sender_restricted:
        if user is not None or is_company:
            return
        raise SenderNotAllowedError(
            f"This API key may send as the company or as a user, not from {address}; an "
            "administrator can create a key that lists this address as an allowed From.",
            field="from",
        )
    if user is not None and user.pk == api_key.sender_user_id:
        return
    if address.lower() in (allowed.lower() for allowed in api_key.allowed_from):
        return
    raise SenderNotAllowedError(
        f"This API key may send as {api_key_sender_summary(api_key).removeprefix('only ')}, "
        f"not as {address}.",
        field="from",
    )
