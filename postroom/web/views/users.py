"""User Master pages: administrators manage users; every user edits their own profile."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from postroom.accounts import lockouts, selectors, services, user_email
from postroom.accounts.models import User
from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.users import (
    OwnPasswordChangeForm,
    ProfileForm,
    UserCreateForm,
    UserEditForm,
    UserFilterForm,
    add_service_error,
)


@administrator_required
def user_list(request: HttpRequest) -> HttpResponse:
    filter_form = UserFilterForm(request.GET)
    users = selectors.user_list(**filter_form.filters())
    return render(
        request,
        "web/users/list.html",
        {
            "filter_form": filter_form,
            "users": users,
            "is_filtered": any(request.GET.get(name) for name in filter_form.fields),
            "without_email_count": selectors.user_count_without_email(),
            "lockouts": lockouts.lockout_list(),
        },
    )


@administrator_required
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, generated = services.user_create(
                actor=request.user,  # type: ignore[arg-type]
                username=data["username"],
                display_name=data["display_name"],
                email=data["email"],
                role=data["role"],
                password=data["password"] or None,
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            if generated:
                return _password_once(request, user, generated, is_new=True)
            messages.success(request, f"User {user.username} was created.")
            return redirect("user_list")
    return render(request, "web/users/create.html", {"form": form})


@administrator_required
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        user = selectors.user_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None
    actor: User = request.user  # type: ignore[assignment]
    initial = {
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
    }
    form = UserEditForm(request.POST or None, initial=initial, user=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        generated: str | None = None
        try:
            # One transaction: a refused password leaves the details unchanged too.
            with transaction.atomic():
                services.user_update(
                    actor=actor,
                    user=user,
                    display_name=data["display_name"],
                    email=data["email"],
                    role=data["role"],
                    is_active=data["is_active"],
                )
                if data["new_password"] or data["generate_password"]:
                    generated = services.user_set_password(
                        actor=actor, user=user, password=data["new_password"] or None
                    )
        except PostroomError as error:
            user.refresh_from_db()
            add_service_error(form, error)
        else:
            if user.pk == actor.pk and (data["new_password"] or generated):
                # Keep the administrator logged in after changing their own password.
                update_session_auth_hash(request, user)
            if generated:
                return _password_once(request, user, generated, is_new=False)
            messages.success(request, f"User {user.username} was saved.")
            return redirect("user_list")
    return render(
        request,
        "web/users/edit.html",
        {
            "form": form,
            "subject": user,
            "is_self": user.pk == actor.pk,
            "lockout": lockouts.lockout_for_user(user=user),
        },
    )


@require_POST
@administrator_required
def lockout_unlock(request: HttpRequest) -> HttpResponse:
    """Unlock a login name or an address (a button on the Users page and the user's page)."""
    actor: User = request.user  # type: ignore[assignment]
    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
    try:
        cleared = lockouts.lockout_unlock(actor=actor, kind=kind, value=value)
    except PostroomError as error:
        return HttpResponseBadRequest(error.message)
    if not cleared:
        messages.info(request, f"{value} was not locked any more: its lock had ended.")
    elif kind == lockouts.LockoutKind.ACCOUNT:
        messages.success(request, f"Logins as {value} are unlocked.")
    else:
        messages.success(request, f"Logins from {value} are unlocked.")
    return redirect(_back(request))


def _back(request: HttpRequest) -> str:
    """The page the button was on, when it is one of this site's; else the Users page."""
    target = request.POST.get("next", "")
    is_safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and is_safe else reverse("user_list")


def _password_once(
    request: HttpRequest, user: User, password: str, *, is_new: bool
) -> HttpResponse:
    # Rendered in the POST's response, never stored: reloading cannot show it again.
    response = render(
        request,
        "web/users/password_once.html",
        {"subject": user, "password": password, "is_new": is_new},
    )
    add_never_cache_headers(response)
    return response


def profile(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = ProfileForm(
        request.POST or None,
        initial={"display_name": user.display_name, "email": user.email},
    )
    if request.method == "POST" and form.is_valid():
        try:
            pending_email = services.profile_update(
                user=user,
                display_name=form.cleaned_data["display_name"],
                email=form.cleaned_data["email"],
                confirm_url=lambda token: request.build_absolute_uri(
                    reverse("email_confirm", args=[token])
                ),
            )
        except PostroomError as error:
            user.refresh_from_db()
            add_service_error(form, error)
        else:
            messages.success(request, "Your profile was saved.")
            if pending_email:
                messages.info(
                    request,
                    f"To change your address, open the link Postroom just mailed to "
                    f"{pending_email}; until then your mail still comes from "
                    f"{user.email or 'no address'}.",
                )
            return redirect("profile")
    return render(request, "web/users/profile.html", {"form": form})


def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed to a new address: show what changes, and change it on a POST (a mail
    scanner that follows links makes only GETs)."""
    user: User = request.user  # type: ignore[assignment]
    try:
        change = user_email.email_change_read(user=user, token=token)
        if request.method == "POST":
            user_email.email_change_confirm(user=user, token=token)
            messages.success(request, f"Your address is now {change.new}.")
            return redirect("profile")
    except PostroomError as error:
        return render(request, "web/users/email_confirm.html", {"error": error.message}, status=400)
    return render(request, "web/users/email_confirm.html", {"change": change})


class PasswordChangeView(auth_views.PasswordChangeView):
    """A user changes their own password; a temporary one then stops being asked for."""

    form_class = OwnPasswordChangeForm
    success_url = "/account/password/done/"

    def form_valid(self, form: Form) -> HttpResponse:
        user: User = self.request.user  # type: ignore[assignment]
        services.user_change_own_password(user=user, password=form.cleaned_data["new_password1"])
        # Keep this session: Django would otherwise end it with the old password's hash.
        update_session_auth_hash(self.request, user)
        return redirect(self.get_success_url())


urlpatterns = [
    path("users/", user_list, name="user_list"),
    path("users/unlock/", lockout_unlock, name="lockout_unlock"),
    path("users/new/", user_create, name="user_create"),
    path("users/<int:pk>/edit/", user_edit, name="user_edit"),
    path("profile/", profile, name="profile"),
    path("profile/email/<str:token>/", email_confirm, name="email_confirm"),
]
