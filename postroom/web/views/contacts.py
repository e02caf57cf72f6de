"""Contacts pages: the list (search, filters, selection), a contact's page with its history,
create, edit, delete; companies; CSV import and export.

Every role may view and edit contacts and import them; deleting a contact or a company is
for administrators and staff (postroom.contacts.services.DELETE_ROLES). An import's pages
are its creator's and the administrators'.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import User
from postroom.contacts import exporting, import_jobs, selectors, services
from postroom.contacts.models import Contact, ImportJob, ImportStatus, Organization
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.contacts import (
    ContactFilterForm,
    ContactForm,
    ImportMappingForm,
    ImportUploadForm,
    OrganizationForm,
)
from postroom.web.forms.users import add_service_error
from postroom.web.uploads import UploadSizeCap, upload_cap_install

# 50 rows read comfortably and keep the page fast; the export has every contact.
CONTACTS_PER_PAGE = 50
RECENT_IMPORTS = 10
# Rejected rows listed on the page; the downloadable report has all of them.
REJECTED_ROWS_SHOWN = 50


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _contact_or_404(pk: int) -> Contact:
    try:
        return selectors.contact_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _organization_or_404(pk: int) -> Organization:
    try:
        return selectors.organization_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _require_can_delete(request: HttpRequest) -> None:
    if not services.contact_can_delete(_user(request)):
        raise PermissionDenied(
            "Only administrators and staff can delete contacts and companies. Mark a contact "
            "inactive instead."
        )


# Contacts.


@require_GET
def contact_list(request: HttpRequest) -> HttpResponse:
    form = ContactFilterForm(request.GET)
    filters = form.filters()
    page = Paginator(selectors.contact_list(filters=filters), CONTACTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "web/contacts/list.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "total": selectors.contact_count(),
            "can_delete": services.contact_can_delete(_user(request)),
        },
    )


def _contact_form_context(form: ContactForm, **extra: Any) -> dict[str, Any]:
    return {"form": form, "organization_names": selectors.organization_names(), **extra}


@require_http_methods(["GET", "POST"])
def contact_create(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            contact = services.contact_create(
                actor=_user(request),
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                phone=data["phone"],
                organization_name=data["organization_name"],
                tags=data["tags"],
                notes=data["notes"],
                marketing_consent=data["marketing_consent"],
                marketing_consent_at=data["marketing_consent_at"],
                marketing_consent_source=data["marketing_consent_source"],
                is_active=data["is_active"],
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Contact {contact} was created.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "web/contacts/form.html", _contact_form_context(form))


@require_GET
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_or_404(pk)
    return render(
        request,
        "web/contacts/detail.html",
        {
            "contact": contact,
            "tags": [tag.name for tag in contact.tags.all()],
            "can_delete": services.contact_can_delete(_user(request)),
            "history": selectors.contact_history(contact=contact, user=_user(request)),
            "address_refusal": selectors.contact_address_refusal(contact=contact),
        },
    )


@require_http_methods(["GET", "POST"])
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_or_404(pk)
    consent_at = contact.marketing_consent_at
    initial = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "organization_name": contact.organization.name if contact.organization else "",
        "tags": ", ".join(tag.name for tag in contact.tags.all()),
        "notes": contact.notes,
        "marketing_consent": contact.marketing_consent,
        "marketing_consent_at": timezone.localdate(consent_at) if consent_at else None,
        "marketing_consent_source": contact.marketing_consent_source,
        "is_active": contact.is_active,
    }
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.contact_update(
                actor=_user(request),
                contact=contact,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                phone=data["phone"],
                organization_name=data["organization_name"],
                tags=data["tags"],
                notes=data["notes"],
                is_active=data["is_active"],
                **form.consent_changes(),
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Contact {contact} was saved.")
            return redirect("contact_detail", pk=contact.pk)
    return render(request, "web/contacts/form.html", _contact_form_context(form, contact=contact))


@require_http_methods(["GET", "POST"])
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_can_delete(request)
    contact = _contact_or_404(pk)
    if request.method == "POST":
        name = str(contact)
        try:
            services.contact_delete(actor=_user(request), contact=contact)
        except PostroomError as error:
            messages.error(request, error.message)
            return redirect("contact_detail", pk=pk)
        messages.success(
            request,
            f"Contact {name} was deleted. The messages sent to {contact.email} stay in the outbox.",
        )
        return redirect("contact_list")
    return render(request, "web/contacts/delete.html", {"contact": contact})


@require_GET
def contact_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered list, or the contacts ticked on the list, as CSV."""
    if request.GET.get("selection"):
        ids = [int(value) for value in request.GET.getlist("contact") if value.isdigit()]
        if not ids:
            messages.error(request, "Tick the contacts to export first, or export the list.")
            return redirect("contact_list")
        contacts = selectors.contact_list_by_ids(ids=ids)
        description = f"{len(ids)} selected"
    else:
        filters = ContactFilterForm(request.GET).filters()
        contacts = selectors.contact_list(filters=filters)
        description = filters.description()
    services.contact_export_record(
        actor=_user(request), count=contacts.count(), description=description
    )
    lines = exporting.contact_export_lines(contacts.iterator(chunk_size=exporting.EXPORT_CHUNK))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"contacts-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    add_never_cache_headers(response)
    return response


# Companies.


@require_GET
def organization_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:200]
    return render(
        request,
        "web/contacts/organization_list.html",
        {
            "organizations": selectors.organization_list(search=search),
            "search": search,
            "can_delete": services.contact_can_delete(_user(request)),
        },
    )


@require_http_methods(["GET", "POST"])
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(actor=_user(request), **form.cleaned_data)
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Company {organization} was created.")
            return redirect("organization_list")
    return render(request, "web/contacts/organization_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
def organization_edit(request: HttpRequest, pk: int) -> HttpResponse:
    organization = _organization_or_404(pk)
    initial = {
        "name": organization.name,
        "website": organization.website,
        "notes": organization.notes,
    }
    form = OrganizationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.organization_update(
                actor=_user(request), organization=organization, **form.cleaned_data
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Company {organization} was saved.")
            return redirect("organization_list")
    return render(
        request,
        "web/contacts/organization_form.html",
        {
            "form": form,
            "organization": organization,
            "can_delete": services.contact_can_delete(_user(request)),
        },
    )


@require_http_methods(["GET", "POST"])
def organization_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_can_delete(request)
    organization = _organization_or_404(pk)
    if request.method == "POST":
        count = services.organization_delete(actor=_user(request), organization=organization)
        messages.success(
            request,
            f"Company {organization} was deleted; its {count} contact{'s' if count != 1 else ''} "
            "stay, without a company.",
        )
        return redirect("organization_list")
    return render(
        request,
        "web/contacts/organization_delete.html",
        {"organization": organization, "contact_count": organization.contacts.count()},
    )


# CSV import.


def _import_job_or_404(request: HttpRequest, pk: int) -> ImportJob:
    try:
        return selectors.import_job_get(pk=pk, user=_user(request))
    except NotFoundError as error:
        raise Http404(error.message) from None


@csrf_exempt  # checked by csrf_protect below, once the size cap handler is in place
@require_http_methods(["GET", "POST"])
def contact_import(request: HttpRequest) -> HttpResponse:
    cap = upload_cap_install(request, limit=import_jobs.import_max_bytes())
    return _contact_import(request, cap)


@csrf_protect
def _contact_import(request: HttpRequest, cap: UploadSizeCap) -> HttpResponse:
    is_post = request.method == "POST"
    form = ImportUploadForm(request.POST, request.FILES) if is_post else ImportUploadForm()
    if is_post:
        if cap.is_exceeded:
            form.is_valid()  # the file is missing: replace "required" by the real reason
            form.errors.pop("file", None)
            form.add_error(
                "file",
                f"The file is larger than {import_jobs.import_size_text(cap.limit)}, the "
                "limit. Split it into smaller files and import them one after the other: "
                "contacts in several files are merged by address.",
            )
        elif form.is_valid():
            try:
                job = import_jobs.import_job_upload(
                    actor=_user(request), upload=form.cleaned_data["file"]
                )
            except PostroomError as error:
                add_service_error(form, error)
            else:
                return redirect("contact_import_mapping", pk=job.pk)
    return render(
        request,
        "web/contacts/import.html",
        {
            "form": form,
            "jobs": selectors.import_job_list(user=_user(request), limit=RECENT_IMPORTS),
            "max_size": import_jobs.import_size_text(import_jobs.import_max_bytes()),
        },
    )


@require_http_methods(["GET", "POST"])
def contact_import_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import_job_or_404(request, pk)
    if job.status not in import_jobs.MAPPABLE_STATUSES or not import_jobs.import_job_has_file(job):
        return redirect("contact_import_job", pk=job.pk)
    initial = {"delimiter": job.delimiter}
    initial.update({f"column_{index}": name for index, name in job.mapping.items()})
    form = ImportMappingForm(request.POST or None, headers=job.headers, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if form.cleaned_data["delimiter"] != job.delimiter:
                import_jobs.import_job_delimiter_set(
                    job=job, delimiter=form.cleaned_data["delimiter"]
                )
                messages.info(request, "The file was read again with the new separator.")
                return redirect("contact_import_mapping", pk=job.pk)
            import_jobs.import_job_check_start(job=job, mapping=form.mapping())
        except PostroomError as error:
            add_service_error(form, error)
        else:
            return redirect("contact_import_job", pk=job.pk)
    samples = import_jobs.import_job_samples(job=job)
    columns = [
        (field, [row[index] if index < len(row) else "" for row in samples])
        for index, field in enumerate(form.column_fields())
    ]
    return render(
        request,
        "web/contacts/import_mapping.html",
        {"job": job, "form": form, "columns": columns},
    )


@require_GET
def contact_import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import_job_or_404(request, pk)
    progress = import_jobs.import_job_progress(job=job)
    if job.status == ImportStatus.UPLOADED:
        return redirect("contact_import_mapping", pk=job.pk)
    return render(
        request,
        "web/contacts/import_job.html",
        {
            "job": job,
            "progress": progress,
            "rejected": job.report[:REJECTED_ROWS_SHOWN],
            "can_remap": job.status in import_jobs.MAPPABLE_STATUSES
            and import_jobs.import_job_has_file(job),
        },
    )


@require_GET
def contact_import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar, polled by htmx; once the job is no longer running, the page reloads
    to show the outcome."""
    job = _import_job_or_404(request, pk)
    progress = import_jobs.import_job_progress(job=job)
    response = render(
        request, "web/contacts/_import_progress.html", {"job": job, "progress": progress}
    )
    if not job.is_running:
        response["HX-Refresh"] = "true"
    add_never_cache_headers(response)
    return response


@require_POST
def contact_import_run(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import_job_or_404(request, pk)
    if not import_jobs.import_job_run_start(job=job):
        messages.error(request, "This import is not ready to run (it may already be running).")
    return redirect("contact_import_job", pk=job.pk)


@require_POST
def contact_import_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import_job_or_404(request, pk)
    try:
        outcome = import_jobs.import_job_cancel(job=job)
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("contact_import_job", pk=job.pk)
    messages.info(request, _CANCEL_MESSAGES[outcome])
    return redirect("contact_import")


_CANCEL_MESSAGES = {
    import_jobs.CancelOutcome.CANCELLED: "The import is cancelled. Nothing of it was imported.",
    import_jobs.CancelOutcome.STOPPING: (
        "The import is being cancelled: the worker stops it at its next step, and nothing of "
        "it is imported."
    ),
    import_jobs.CancelOutcome.FINISHED: "The import had already finished; nothing was cancelled.",
}


@require_GET
def contact_import_report(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Every rejected row with its reason and the file's own cells, to fix and import again."""
    job = _import_job_or_404(request, pk)
    lines = exporting.csv_lines(import_jobs.import_report_rows(job=job))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        content_disposition_header(True, f"rejected-rows-import-{job.pk}.csv") or ""
    )
    response["X-Content-Type-Options"] = "nosniff"
    add_never_cache_headers(response)
    return response


urlpatterns = [
    path("", contact_list, name="contact_list"),
    path("new/", contact_create, name="contact_create"),
    path("export.csv", contact_export, name="contact_export"),
    path("<int:pk>/", contact_detail, name="contact_detail"),
    path("<int:pk>/edit/", contact_edit, name="contact_edit"),
    path("<int:pk>/delete/", contact_delete, name="contact_delete"),
    path("companies/", organization_list, name="organization_list"),
    path("companies/new/", organization_create, name="organization_create"),
    path("companies/<int:pk>/edit/", organization_edit, name="organization_edit"),
    path("companies/<int:pk>/delete/", organization_delete, name="organization_delete"),
    path("import/", contact_import, name="contact_import"),
    path("import/<int:pk>/", contact_import_job, name="contact_import_job"),
    path("import/<int:pk>/mapping/", contact_import_mapping, name="contact_import_mapping"),
    path("import/<int:pk>/progress/", contact_import_progress, name="contact_import_progress"),
    path("import/<int:pk>/run/", contact_import_run, name="contact_import_run"),
    path("import/<int:pk>/cancel/", contact_import_cancel, name="contact_import_cancel"),
    path("import/<int:pk>/rejected.csv", contact_import_report, name="contact_import_report"),
]
