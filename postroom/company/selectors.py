"""Read the company master."""

from __future__ import annotations

from postroom.company.models import Company

COMPANY_PK = 1


def company_get() -> Company:
    """Return the one company of this install, creating its empty row on first use."""
    company, _ = Company.objects.get_or_create(pk=COMPANY_PK)
    return company
