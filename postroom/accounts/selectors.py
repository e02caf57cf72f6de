"""Read the User Master."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from postroom.accounts.models import ApiKey, Role, User
from postroom.company.selectors import company_get
from postroom.core.errors import NotFoundError


def user_get(*, pk: int) -> User:
    try:
        return User.objects.get(pk=pk)
    except User.DoesNotExist:
        raise NotFoundError(f"There is no user #{pk}; it may have been removed.") from None


def user_list(
    *,
    search: str = "",
    role: str = "",
    is_active: bool | None = None,
    has_email: bool | None = None,
) -> QuerySet[User]:
    """Users matching every given filter; `search` looks in login, display name and address."""
    users = User.objects.all()
    search = search.strip()
    if search:
        users = users.filter(
            Q(username__icontains=search)
            | Q(display_name__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
        )
    if role:
        users = users.filter(role=role)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    if has_email is not None:
        users = users.exclude(email="") if has_email else users.filter(email="")
    return users.order_by("username")


def user_count_without_email() -> int:
    """Active users who cannot send to contacts yet, because mail comes from their address."""
    return User.objects.filter(is_active=True, email="").count()


def address_holder(*, address: str, exclude_user_pk: int | None = None) -> str | None:
    """Who else sends from `address`, in words, or None if nobody does.

    An address has one sender: a user, the company, or the API keys that list it as an
    allowed From address (a role address such as invoices@). Mail from it is stored as that
    sender's, so a user who took such an address would be handed its mail (and its .eml).
    """
    address = address.strip().lower()
    if not address:
        return None
    users = User.objects.filter(email__iexact=address)
    if exclude_user_pk is not None:
        users = users.exclude(pk=exclude_user_pk)
    if (user := users.first()) is not None:
        return f"the address of the user {user.name} ({user.username})"
    if company_get().sender_email.strip().lower() == address:
        return "the company's address (Company > SMTP Server Information)"
    keys = ApiKey.objects.filter(revoked_at__isnull=True).exclude(allowed_from=[])
    for key in keys.only("name", "allowed_from"):
        if address in (allowed.lower() for allowed in key.allowed_from):
            return f"an allowed From address of the API key “{key.name}”"
    return None


def user_username_taken(*, username: str) -> bool:
    # Logins differing only in case would be told apart by the login form but not by people.
    return User.objects.filter(username__iexact=username).exists()


def user_active_administrators() -> QuerySet[User]:
    return User.objects.filter(role=Role.ADMINISTRATOR, is_active=True)
