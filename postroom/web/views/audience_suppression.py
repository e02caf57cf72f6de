"""Audiences → Suppression (marketers and administrators): the addresses bulk mail never goes
to, with reason and date; search, add, remove, import and export, each audited. Routed by
postroom.web.views.audiences."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from postroom.accounts.models import User
from postroom.accounts.permissions import marketer_required
from postroom.audiences.suppression_files import (
    suppression_export_lines,
    suppression_file_read,
)
from postroom.audit.services import audit_record
from postroom.contacts import import_jobs
from postroom.core.errors import NotFoundError, PostroomError
from postroom.outbox import suppression
from postroom.outbox.models import Suppression
from postroom.queue.keyset import keyset_page
from postroom.web.forms.audiences import (
    SuppressionAddForm,
    SuppressionFilterForm,
    SuppressionImportForm,
)
from postroom.web.forms.users import add_service_error
from postroom.web.uploads import UploadSizeCap, upload_cap_install

ENTRIES_PER_PAGE = 50
# Rejected rows listed after an import; a person fixes a few and re-imports.
REJECTED_SHOWN = 50
EXPORT_CHUNK = 2000


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _page_key(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


@marketer_required
@require_http_methods(["GET", "POST"])
def suppression_list(request: HttpRequest) -> HttpResponse:
    filters = SuppressionFilterForm(request.GET)
    search, reason = filters.values()
    form = SuppressionAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = suppression.suppression_add(actor=_user(request), **form.cleaned_data)
        except PostroomError as error:
            add_service_error(form, error)
        else:
            if entry.is_new:
                messages.success(request, f"{entry.address} is suppressed.")
            else:
                when = timezone.localtime(entry.created_at).strftime("%Y-%m-%d")
                messages.info(
                    request,
                    f"{entry.address} was already suppressed, since {when} "
                    f"({entry.get_reason_display().lower()}); nothing changed.",
                )
            return redirect("audience_suppression")
    page = keyset_page(
        suppression.suppression_list(search=search, reason=reason),
        size=ENTRIES_PER_PAGE,
        following=_page_key(request, "before"),
        preceding=_page_key(request, "after"),
    )
    return render(
        request,
        "web/audiences/suppression_list.html",
        {
            "filters": filters,
            "is_filtered": bool(search or reason),
            "page": page,
            "form": form,
            "total": Suppression.objects.count(),
        },
    )


def _entry_or_404(pk: int) -> Suppression:
    try:
        return suppression.suppression_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@marketer_required
@require_http_methods(["GET", "POST"])
def suppression_remove(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _entry_or_404(pk)
    if request.method == "POST":
        suppression.suppression_remove(actor=_user(request), suppression=entry)
        messages.success(
            request,
            f"{entry.address} is no longer suppressed: bulk mail may reach it again, mail "
            "already waiting too.",
        )
        return redirect("audience_suppression")
    return render(request, "web/audiences/suppression_remove.html", {"entry": entry})


@csrf_exempt  # checked by csrf_protect below, once the size cap handler is in place
@marketer_required
@require_http_methods(["GET", "POST"])
def suppression_import(request: HttpRequest) -> HttpResponse:
    cap = upload_cap_install(request, limit=import_jobs.import_max_bytes())
    return _suppression_import(request, cap)


@csrf_protect
def _suppression_import(request: HttpRequest, cap: UploadSizeCap) -> HttpResponse:
    is_post = request.method == "POST"
    form = (
        SuppressionImportForm(request.POST, request.FILES) if is_post else SuppressionImportForm()
    )
    rejected = []
    if is_post and cap.is_exceeded:
        form.is_valid()
        form.errors.pop("file", None)
        form.add_error(
            "file",
            f"The file is larger than {import_jobs.import_size_text(cap.limit)}, the limit. "
            "Split it into smaller files.",
        )
    elif is_post and form.is_valid():
        upload = form.cleaned_data["file"]
        user = _user(request)
        try:
            read = suppression_file_read(
                upload,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                source=f"CSV import of {upload.name} by {user.get_username()}",
            )
            outcome = suppression.suppression_import(
                actor=user, entries=read.entries, filename=upload.name or "suppression.csv"
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                f"{outcome.added} address{'es' if outcome.added != 1 else ''} added; "
                f"{outcome.already} already suppressed; {len(read.rejected)} row"
                f"{'s' if len(read.rejected) != 1 else ''} rejected.",
            )
            if not read.rejected:
                return redirect("audience_suppression")
            rejected = read.rejected
    return render(
        request,
        "web/audiences/suppression_import.html",
        {
            "form": form,
            "rejected": rejected[:REJECTED_SHOWN],
            "rejected_count": len(rejected),
            "max_size": import_jobs.import_size_text(import_jobs.import_max_bytes()),
        },
    )


@marketer_required
@require_GET
def suppression_export(request: HttpRequest) -> HttpResponseBase:
    search, reason = SuppressionFilterForm(request.GET).values()
    entries = suppression.suppression_list(search=search, reason=reason)
    audit_record(
        actor=_user(request),
        action="suppression.exported",
        subject="suppression list",
        changes={"Addresses": entries.count(), "Search": search, "Reason": reason},
    )
    lines = suppression_export_lines(entries.iterator(chunk_size=EXPORT_CHUNK))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"suppression-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    add_never_cache_headers(response)
    return response


urlpatterns = [
    path("suppression/", suppression_list, name="audience_suppression"),
    path("suppression/import/", suppression_import, name="audience_suppression_import"),
    path("suppression/export.csv", suppression_export, name="audience_suppression_export"),
    path("suppression/<int:pk>/remove/", suppression_remove, name="audience_suppression_remove"),
]
