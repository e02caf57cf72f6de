"""Company → Domain check: SPF, DKIM, DMARC and MX of each sending domain, and the HELO name.

The check runs as the page loads (a GET: it only reads the DNS) and "Check again" loads it
anew. That keeps the page whole, Copy buttons included, without JavaScript; the wait stays
short because every lookup has a short timeout (postroom.core.dns.LOOKUP_TIMEOUT_SECONDS)
and independent lookups run side by side (postroom.domains.check): a DNS server that does not
answer at all costs about one timeout (4.1 s measured) and ends as "could not check".
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from postroom.accounts.permissions import administrator_required
from postroom.domains.check import domains_check
from postroom.web.views.company import COMPANY_TABS


@require_GET
@administrator_required
def company_domains(request: HttpRequest) -> HttpResponse:
    context = {"tabs": COMPANY_TABS, "active_tab": "company_domains", "check": domains_check()}
    return render(request, "web/company/domains.html", context)


urlpatterns = [path("", company_domains, name="company_domains")]
