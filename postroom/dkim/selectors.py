"""Which domains Postroom sends from, and their DKIM keys."""

from __future__ import annotations

from postroom.accounts.models import User
from postroom.company.selectors import company_get


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def sending_domains() -> list[str]:
    """The company's domain (its email address's) first, then every active user's domain that
    differs, in alphabetical order: the domains mail from Postroom carries in From."""
    company_domain = _domain_of(company_get().sender_email)
    users = User.objects.filter(is_active=True).exclude(email="").values_list("email", flat=True)
    others = sorted({_domain_of(email) for email in users} - {company_domain, ""})
    return [company_domain, *others] if company_domain else others
