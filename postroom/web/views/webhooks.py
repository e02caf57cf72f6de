"""Webhooks pages (administrators): endpoints, their secrets (shown once), delivery logs."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from postroom.accounts.models import User
from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.users import add_service_error
from postroom.web.forms.webhooks import EndpointEditForm, EndpointForm, SecretRotateForm
from postroom.webhooks import selectors, services
from postroom.webhooks.models import Delivery, DeliveryStatus, Endpoint

# Deliveries per page of an endpoint's log.
LOG_PAGE_SIZE = 50


@administrator_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    endpoints = list(selectors.endpoint_list())
    failing = [endpoint for endpoint in endpoints if endpoint.failing_since]
    return render(request, "web/webhooks/list.html", {"endpoints": endpoints, "failing": failing})


@administrator_required
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint, secret = services.endpoint_create(
                actor=_actor(request),
                url=data["url"],
                description=data["description"],
                all_events=data["all_events"],
                event_types=data["event_types"],
                is_internal_allowed=data["is_internal_allowed"],
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            return _secret_page(request, endpoint, secret, created=True)
    return render(request, "web/webhooks/form.html", {"form": form, "endpoint": None})


@administrator_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    status = request.GET.get("status", "")
    deliveries = selectors.delivery_list(endpoint=endpoint, status=status)
    page = Paginator(deliveries, LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/webhooks/detail.html",
        {
            "endpoint": endpoint,
            "page": page,
            "status": status if status in DeliveryStatus.values else "",
            "statuses": DeliveryStatus.choices,
            "previous_secret_signs": selectors.endpoint_previous_secret_signs(endpoint=endpoint),
        },
    )


@administrator_required
def webhook_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "all_events": endpoint.all_events,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
        "is_internal_allowed": endpoint.is_internal_allowed,
    }
    form = EndpointEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.endpoint_update(
                actor=_actor(request),
                endpoint=endpoint,
                url=data["url"],
                description=data["description"],
                all_events=data["all_events"],
                event_types=data["event_types"],
                is_active=data["is_active"],
                is_internal_allowed=data["is_internal_allowed"],
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "The endpoint is saved.")
            return redirect("webhook_detail", pk=endpoint.pk)
    return render(request, "web/webhooks/form.html", {"form": form, "endpoint": endpoint})


@administrator_required
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    form = SecretRotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        secret = services.endpoint_secret_rotate(
            actor=_actor(request),
            endpoint=endpoint,
            keep_previous=form.cleaned_data["keep_previous"],
        )
        return _secret_page(request, endpoint, secret, created=False)
    return render(request, "web/webhooks/rotate.html", {"endpoint": endpoint, "form": form})


@administrator_required
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    if request.method == "POST":
        services.endpoint_delete(actor=_actor(request), endpoint=endpoint)
        messages.success(request, f"The endpoint {endpoint.url} is deleted.")
        return redirect("webhook_list")
    pending = selectors.delivery_pending_count(endpoint=endpoint)
    return render(request, "web/webhooks/delete.html", {"endpoint": endpoint, "pending": pending})


@administrator_required
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    try:
        delivery = services.endpoint_send_test(actor=_actor(request), endpoint=endpoint)
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"A test event ({delivery.webhook_id}) is on its way; its outcome appears below "
            "within seconds.",
        )
    return redirect("webhook_detail", pk=endpoint.pk)


@administrator_required
def webhook_delivery(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = _delivery(pk)
    return render(
        request,
        "web/webhooks/delivery.html",
        {
            "delivery": delivery,
            "endpoint": delivery.endpoint,
            "attempts": selectors.delivery_attempt_list(delivery=delivery),
        },
    )


@administrator_required
@require_POST
def webhook_delivery_resend(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = _delivery(pk)
    try:
        services.delivery_resend(actor=_actor(request), delivery=delivery)
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{delivery.webhook_id} is queued to be posted again now.")
    if request.POST.get("back") == "delivery":
        return redirect("webhook_delivery", pk=delivery.pk)
    return redirect("webhook_detail", pk=delivery.endpoint_id)


def _secret_page(
    request: HttpRequest, endpoint: Endpoint, secret: str, *, created: bool
) -> HttpResponse:
    # Rendered in the POST's answer and never stored in plaintext: a reload cannot show it.
    response = render(
        request,
        "web/webhooks/secret.html",
        {"endpoint": endpoint, "secret": secret, "created": created},
    )
    add_never_cache_headers(response)
    return response


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _endpoint(pk: int) -> Endpoint:
    try:
        return selectors.endpoint_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _delivery(pk: int) -> Delivery:
    try:
        return selectors.delivery_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


urlpatterns = [
    path("", webhook_list, name="webhook_list"),
    path("new/", webhook_create, name="webhook_create"),
    path("<int:pk>/", webhook_detail, name="webhook_detail"),
    path("<int:pk>/edit/", webhook_edit, name="webhook_edit"),
    path("<int:pk>/rotate/", webhook_rotate, name="webhook_rotate"),
    path("<int:pk>/delete/", webhook_delete, name="webhook_delete"),
    path("<int:pk>/test/", webhook_test, name="webhook_test"),
    path("deliveries/<int:pk>/", webhook_delivery, name="webhook_delivery"),
    path("deliveries/<int:pk>/resend/", webhook_delivery_resend, name="webhook_delivery_resend"),
]
