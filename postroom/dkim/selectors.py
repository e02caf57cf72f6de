"""Which domains Postroom sends from, and their DKIM keys."""

from __future__ import annotations

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.dkim.models import DkimKey, KeyState


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def sending_domains() -> list[str]:
    """The company's domain (its email address's) first, then every active user's domain that
    differs, in alphabetical order: the domains mail from Postroom carries in From."""
    company_domain = _domain_of(company_get().sender_email)
    users = User.objects.filter(is_active=True).exclude(email="").values_list("email", flat=True)
    others = sorted({_domain_of(email) for email in users} - {company_domain, ""})
    return [company_domain, *others] if company_domain else others


def dkim_keys_by_domain() -> list[tuple[str, list[DkimKey]]]:
    """Each sending domain with its keys (newest first), then any other domain that still has
    keys (a user who left, a domain that changed): what Company → DKIM lists."""
    keys: dict[str, list[DkimKey]] = {}
    for key in DkimKey.objects.order_by("domain", "-created_at", "-pk"):
        keys.setdefault(key.domain, []).append(key)
    domains = sending_domains()
    others = sorted(set(keys) - set(domains))
    return [(domain, keys.get(domain, [])) for domain in [*domains, *others]]


def dkim_signing_keys() -> list[DkimKey]:
    return list(DkimKey.objects.filter(state=KeyState.SIGNING).order_by("domain", "algorithm"))
