"""`/healthz`, `/readyz` and `/metrics`: what load balancers, service managers and Prometheus ask.

None needs a login, and none says anything secret: the first two are open to anyone who
reaches the site; `/metrics` asks for its bearer token (postroom.ops.access).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from postroom.ops.access import bearer_token_matches
from postroom.ops.metrics import metrics_render
from postroom.ops.readiness import readiness_check

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: this process answers requests. It asks nothing of the database, so a
    database outage never makes a service manager restart every web process at once."""
    return JsonResponse({"alive": True})


@login_not_required
@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when this process can serve, 503 saying which check failed."""
    readiness = readiness_check()
    response = JsonResponse(readiness.as_json(), status=200 if readiness.is_ready else 503)
    # Django logs every 5xx answer as an ERROR; a load balancer probing a process that is not
    # ready would fill the log with them. readiness_check logs each change instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@login_not_required
@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.POSTROOM_METRICS_TOKEN
    if not token:
        return HttpResponse(
            "Metrics are off: set POSTROOM_METRICS_TOKEN to turn them on.\n",
            status=404,
            content_type=_TEXT,
        )
    if not bearer_token_matches(request.headers.get("Authorization", ""), token=token):
        response = HttpResponse(
            "Send the metrics token: Authorization: Bearer <POSTROOM_METRICS_TOKEN>.\n",
            status=401,
            content_type=_TEXT,
        )
        response["WWW-Authenticate"] = 'Bearer realm="postroom-metrics"'
        return response
    try:
        body, content_type = metrics_render(accept=request.headers.get("Accept", ""))
    except DatabaseError:
        logger.exception("Metrics: the database did not answer")
        response = HttpResponse(
            "The database does not answer; the log of this process says why.\n",
            status=503,
            content_type=_TEXT,
        )
        response._has_been_logged = True  # type: ignore[attr-defined]  # just above
        return response
    return HttpResponse(body, content_type=content_type)
