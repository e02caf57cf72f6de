"""The pages a campaign's recipients reach from its message, without logging in: unsubscribe
(and its RFC 8058 one-click POST), the open pixel and the click redirects.

The recipient's signed token in the address is the only credential (postroom.campaigns.
links): a token that was changed or has expired is refused, and nothing here reads a
session. The unsubscribe view is exempt from CSRF because RFC 8058's POST comes from the
mail provider's servers, with no cookie and no form token; that is safe because it changes
nothing but the token's own recipient, only on POST (a GET, which link scanners and
previews follow, only shows the page), and the same way every time (idempotent).
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import path
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from postroom.campaigns import links, responses
from postroom.campaigns.links import LinkError
from postroom.campaigns.sending import ONE_CLICK
from postroom.company.selectors import company_get
from postroom.core.errors import NotFoundError

# A transparent 1×1 GIF: the smallest image every mail program shows.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _private(response: HttpResponse) -> HttpResponse:
    """Never cached, never indexed, and the token never leaves in a Referer."""
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _link_error(request: HttpRequest, error: LinkError) -> HttpResponse:
    response = render(
        request,
        "web/campaigns/unsubscribe.html",
        {"error": str(error), "is_expired": error.is_expired, "company": company_get()},
        status=400,
    )
    return _private(response)


def _is_one_click(request: HttpRequest) -> bool:
    # RFC 8058 §3.1: the body is "List-Unsubscribe=One-Click" (form-encoded or multipart).
    key, _, value = ONE_CLICK.partition("=")
    return request.POST.get(key) == value


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = responses.link_target(token)
    except LinkError as error:
        return _link_error(request, error)
    if request.method == "POST" and _is_one_click(request):
        responses.unsubscribe(target, how="one-click")
        response = HttpResponse("You are unsubscribed.\n", content_type="text/plain")
        return _private(response)
    done = ""
    if request.method == "POST":
        if request.POST.get("action") == "resubscribe":
            done = "resubscribed" if responses.resubscribe(target) else "unchanged"
        else:
            responses.unsubscribe(target, how="page")
            done = "unsubscribed"
    context: dict[str, Any] = {
        "target": target,
        "company": company_get(),
        "is_unsubscribed": responses.is_unsubscribed(target),
        "done": done,
    }
    return _private(render(request, "web/campaigns/unsubscribe.html", context))


@login_not_required
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    # An image answers with an image: a bad token has nothing to tell a mail program.
    with contextlib.suppress(LinkError, NotFoundError):
        responses.open_record(responses.link_target(token))
    return _private(HttpResponse(PIXEL, content_type="image/gif"))


@login_not_required
@require_GET
def click(request: HttpRequest, token: str, index: int) -> HttpResponse:
    try:
        target = responses.link_target(token)
        url = responses.click_record(target, index=index)
    except LinkError as error:
        return _link_error(request, error)
    except NotFoundError as error:
        raise Http404(error.message) from None
    return _private(HttpResponseRedirect(url))


urlpatterns = [
    path(f"{links.UNSUBSCRIBE_PATH}<str:token>/", unsubscribe, name="campaign_unsubscribe"),
    path(f"{links.OPEN_PATH}<str:token>/", open_pixel, name="campaign_open"),
    path(f"{links.CLICK_PATH}<str:token>/<int:index>/", click, name="campaign_click"),
]
