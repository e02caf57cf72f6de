"""Audiences pages (marketers and administrators): lists with their members and CSV imports,
segments with a live count and sample as the conditions are typed (htmx), and the
suppression list (postroom.web.views.audience_suppression, routed here).

Staff see contacts but do not manage audiences: these pages answer them 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import User
from postroom.accounts.permissions import marketer_required
from postroom.audiences import selectors, services
from postroom.audiences.models import ContactList, Segment, SegmentMatch
from postroom.audiences.rules import rules_clean, rules_text
from postroom.contacts import import_jobs
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.audiences import (
    ListForm,
    MembersAddForm,
    RuleRow,
    SegmentForm,
    rule_rows_from_post,
    rule_rows_from_rules,
)
from postroom.web.forms.contacts import ImportUploadForm
from postroom.web.forms.users import add_service_error
from postroom.web.uploads import UploadSizeCap, upload_cap_install
from postroom.web.views import audience_suppression

MEMBERS_PER_PAGE = 50
RECENT_IMPORTS = 5


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _list_or_404(pk: int) -> ContactList:
    try:
        return selectors.list_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _segment_or_404(pk: int) -> Segment:
    try:
        return selectors.segment_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@marketer_required
def audiences(request: HttpRequest) -> HttpResponse:
    return redirect("audience_list_list")


# Lists.


@marketer_required
@require_GET
def list_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:200]
    return render(
        request,
        "web/audiences/list_list.html",
        {"lists": selectors.list_list(search=search), "search": search},
    )


@marketer_required
@require_http_methods(["GET", "POST"])
def list_create(request: HttpRequest) -> HttpResponse:
    form = ListForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact_list = services.list_create(actor=_user(request), **form.cleaned_data)
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"List {contact_list} was created. Now add its members.")
            return redirect("audience_list_detail", pk=contact_list.pk)
    return render(request, "web/audiences/list_form.html", {"form": form, "contact_list": None})


@marketer_required
@require_GET
def list_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = _list_or_404(pk)
    search = request.GET.get("q", "")[:200]
    members = selectors.list_members(contact_list=contact_list, search=search)
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/audiences/list_detail.html",
        {
            "contact_list": contact_list,
            "page": page,
            "search": search,
            "member_count": contact_list.memberships.count(),
            "add_form": MembersAddForm(),
            "imports": selectors.list_imports(contact_list=contact_list, limit=RECENT_IMPORTS),
        },
    )


@marketer_required
@require_http_methods(["GET", "POST"])
def list_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = _list_or_404(pk)
    initial = {"name": contact_list.name, "description": contact_list.description}
    form = ListForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.list_update(
                actor=_user(request), contact_list=contact_list, **form.cleaned_data
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"List {contact_list} was saved.")
            return redirect("audience_list_detail", pk=contact_list.pk)
    return render(
        request, "web/audiences/list_form.html", {"form": form, "contact_list": contact_list}
    )


@marketer_required
@require_http_methods(["GET", "POST"])
def list_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = _list_or_404(pk)
    if request.method == "POST":
        count = services.list_delete(actor=_user(request), contact_list=contact_list)
        messages.success(
            request,
            f"List {contact_list} was deleted; its {count} member{'s' if count != 1 else ''} "
            "stay contacts.",
        )
        return redirect("audience_list_list")
    return render(
        request,
        "web/audiences/list_delete.html",
        {"contact_list": contact_list, "member_count": contact_list.memberships.count()},
    )


@marketer_required
@require_POST
def list_members_add(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = _list_or_404(pk)
    form = MembersAddForm(request.POST)
    if not form.is_valid():
        errors = [str(error) for error in form.errors.get("addresses", [])]
        messages.error(request, " ".join(errors) or "Type an address.")
        return redirect("audience_list_detail", pk=pk)
    outcome = services.list_members_add_by_address(
        actor=_user(request), contact_list=contact_list, addresses=form.cleaned_data["addresses"]
    )
    messages.success(request, f"{outcome.added} contact{'s' if outcome.added != 1 else ''} added.")
    if outcome.unknown:
        shown = ", ".join(outcome.unknown[:10]) + (" …" if len(outcome.unknown) > 10 else "")
        messages.warning(
            request,
            f"{len(outcome.unknown)} address{'es are' if len(outcome.unknown) != 1 else ' is'} "
            f"no contact's, so not added: {shown}. Add them as contacts first, or import a CSV "
            "file into the list.",
        )
    return redirect("audience_list_detail", pk=pk)


@marketer_required
@require_POST
def list_members_remove(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = _list_or_404(pk)
    ids = [int(value) for value in request.POST.getlist("contact") if value.isdigit()]
    if not ids:
        messages.error(request, "Tick the members to remove first.")
        return redirect("audience_list_detail", pk=pk)
    removed = services.list_members_remove(
        actor=_user(request), contact_list=contact_list, contact_ids=ids
    )
    messages.success(
        request,
        f"{removed} member{'s' if removed != 1 else ''} removed from the list (they stay "
        "contacts).",
    )
    return redirect("audience_list_detail", pk=pk)


@csrf_exempt  # checked by csrf_protect below, once the size cap handler is in place
@marketer_required
@require_http_methods(["GET", "POST"])
def list_import(request: HttpRequest, pk: int) -> HttpResponse:
    cap = upload_cap_install(request, limit=import_jobs.import_max_bytes())
    return _list_import(request, _list_or_404(pk), cap)


@csrf_protect
def _list_import(
    request: HttpRequest, contact_list: ContactList, cap: UploadSizeCap
) -> HttpResponse:
    """The contact import's own upload, with the list as its target; the import's own pages
    then map, check and import it."""
    is_post = request.method == "POST"
    form = ImportUploadForm(request.POST, request.FILES) if is_post else ImportUploadForm()
    if is_post:
        if cap.is_exceeded:
            form.is_valid()
            form.errors.pop("file", None)
            form.add_error(
                "file",
                f"The file is larger than {import_jobs.import_size_text(cap.limit)}, the limit. "
                "Split it into smaller files and import them one after the other.",
            )
        elif form.is_valid():
            try:
                job = import_jobs.import_job_upload(
                    actor=_user(request), upload=form.cleaned_data["file"]
                )
            except PostroomError as error:
                add_service_error(form, error)
            else:
                services.list_import_attach(contact_list=contact_list, job=job)
                return redirect("contact_import_mapping", pk=job.pk)
    return render(
        request,
        "web/audiences/list_import.html",
        {
            "contact_list": contact_list,
            "form": form,
            "max_size": import_jobs.import_size_text(import_jobs.import_max_bytes()),
        },
    )


# Segments.


@marketer_required
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:200]
    rows = []
    for segment in selectors.segment_list(search=search):
        try:
            words = rules_text(rules_clean(segment.rules), match=segment.match)
        except PostroomError as error:
            words = f"(not usable: {error.message})"
        rows.append({"segment": segment, "conditions": words})
    return render(request, "web/audiences/segment_list.html", {"rows": rows, "search": search})


def _segment_form_page(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    """New segment and a segment's own page: the form, saved with "Save"; "Add a
    condition" and "Remove" come back to it (htmx makes the same requests in place)."""
    if request.method == "POST":
        form = SegmentForm(request.POST)
        rows = rule_rows_from_post(request.POST)
    else:
        initial: dict[str, Any] = {"match": SegmentMatch.ALL}
        if segment is not None:
            initial = {
                "name": segment.name,
                "description": segment.description,
                "match": segment.match,
            }
        form = SegmentForm(initial=initial)
        rows = rule_rows_from_rules(segment.rules if segment else [])
    is_saving = request.method == "POST" and request.POST.get("action", "save") == "save"
    if is_saving and form.is_valid():
        saved = _segment_save(request, form, rows, segment)
        if saved is not None:
            messages.success(request, f"Segment {saved} was saved.")
            return redirect("audience_segment_detail", pk=saved.pk)
    return render(
        request,
        "web/audiences/segment_form.html",
        {"form": form, "rows": rows, "segment": segment, **_preview(form, rows)},
    )


def _segment_save(
    request: HttpRequest, form: SegmentForm, rows: list[RuleRow], segment: Segment | None
) -> Segment | None:
    data = form.cleaned_data
    rules = [row.as_data() for row in rows]
    try:
        if segment is None:
            return services.segment_create(actor=_user(request), rules=rules, **data)
        return services.segment_update(actor=_user(request), segment=segment, rules=rules, **data)
    except PostroomError as error:
        add_service_error(form, error)
        return None


def _preview(form: SegmentForm, rows: list[RuleRow]) -> dict[str, Any]:
    """The count and sample of who the typed conditions select, or why they cannot yet."""
    match = form.data.get("match") if form.is_bound else form.initial.get("match")
    probe = Segment(
        rules=[row.as_data() for row in rows],
        match=match if match in SegmentMatch.values else SegmentMatch.ALL,
    )
    try:
        matching = selectors.segment_contacts(segment=probe)
        count = matching.count()
    except PostroomError as error:
        return {"preview_error": error.message}
    return {
        "count": count,
        "reachable": selectors.segment_reachable_count(segment=probe) if count else 0,
        "sample": selectors.segment_sample(segment=probe) if count else [],
    }


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_create(request: HttpRequest) -> HttpResponse:
    return _segment_form_page(request, None)


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _segment_form_page(request, _segment_or_404(pk))


@marketer_required
@require_POST
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count and sample, for htmx, as the conditions are typed."""
    form = SegmentForm(request.POST)
    response = render(
        request,
        "web/audiences/_segment_preview.html",
        _preview(form, rule_rows_from_post(request.POST)),
    )
    add_never_cache_headers(response)
    return response


@marketer_required
@require_POST
def segment_rules(request: HttpRequest) -> HttpResponse:
    """The condition rows again, for htmx, after a field or operator changed (the operators
    and the value's kind follow the field) or a row was added or removed."""
    response = render(
        request, "web/audiences/_segment_rules.html", {"rows": rule_rows_from_post(request.POST)}
    )
    response["HX-Trigger"] = "rules-changed"  # the live count follows the new rows
    return response


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_or_404(pk)
    if request.method == "POST":
        services.segment_delete(actor=_user(request), segment=segment)
        messages.success(request, f"Segment {segment} was deleted; no contact was changed.")
        return redirect("audience_segment_list")
    return render(request, "web/audiences/segment_delete.html", {"segment": segment})


urlpatterns = [
    path("", audiences, name="audiences"),
    path("lists/", list_list, name="audience_list_list"),
    path("lists/new/", list_create, name="audience_list_create"),
    path("lists/<int:pk>/", list_detail, name="audience_list_detail"),
    path("lists/<int:pk>/edit/", list_edit, name="audience_list_edit"),
    path("lists/<int:pk>/delete/", list_delete, name="audience_list_delete"),
    path("lists/<int:pk>/import/", list_import, name="audience_list_import"),
    path("lists/<int:pk>/members/add/", list_members_add, name="audience_list_members_add"),
    path(
        "lists/<int:pk>/members/remove/", list_members_remove, name="audience_list_members_remove"
    ),
    path("segments/", segment_list, name="audience_segment_list"),
    path("segments/new/", segment_create, name="audience_segment_create"),
    path("segments/preview/", segment_preview, name="audience_segment_preview"),
    path("segments/rules/", segment_rules, name="audience_segment_rules"),
    path("segments/<int:pk>/", segment_detail, name="audience_segment_detail"),
    path("segments/<int:pk>/delete/", segment_delete, name="audience_segment_delete"),
    *audience_suppression.urlpatterns,
]
