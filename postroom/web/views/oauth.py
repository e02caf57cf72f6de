"""OAuth sign-in pages: the company relay's (Company → OAuth sign-in), a user's own mailbox
(Profile → My mailbox), and the provider's return to Postroom after someone signed in
(/oauth/callback/).

The sign-in is the authorization-code flow with PKCE: Postroom keeps the state and the code
verifier in the session of the person signing in, and only that person's return with the same
state finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import Role, User
from postroom.accounts.permissions import administrator_required
from postroom.company.models import AuthMethod
from postroom.company.selectors import company_get
from postroom.core.errors import PostroomError
from postroom.oauth import services
from postroom.oauth.models import COMPANY_OWNER, Flow, user_owner
from postroom.oauth.providers import PROVIDERS
from postroom.web.forms.oauth import OAuthSettingsForm, oauth_settings_initial
from postroom.web.views.company import COMPANY_TABS

SESSION_KEY = "postroom_oauth_sign_in"


@dataclass(frozen=True)
class Mailbox:
    """Whose sign-in a page manages, the mailbox it logs in as, and the page's url name."""

    owner: str
    login: str
    page: str


def company_mailbox() -> Mailbox:
    return Mailbox(COMPANY_OWNER, company_get().smtp_login, "company_oauth")


def own_mailbox(user: User) -> Mailbox:
    return Mailbox(user_owner(user.pk), user.email, "profile_mailbox")


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def redirect_uri(request: HttpRequest) -> str:
    """The address to register at the provider: POSTROOM_PUBLIC_URL's, or this site's."""
    callback = reverse("oauth_callback")
    base = settings.POSTROOM_PUBLIC_URL.rstrip("/")
    return f"{base}{callback}" if base else request.build_absolute_uri(callback)


def _may_manage(user: User | AnonymousUser, owner: str) -> bool:
    if not isinstance(user, User):
        return False
    if owner == COMPANY_OWNER:
        return user.role == Role.ADMINISTRATOR
    return owner == user_owner(user.pk)


@require_http_methods(["GET", "POST"])
@administrator_required
def company_oauth(request: HttpRequest) -> HttpResponse:
    company = company_get()
    return _settings_page(
        request,
        company_mailbox(),
        "web/company/oauth.html",
        {
            "tabs": COMPANY_TABS,
            "active_tab": "company_oauth",
            "is_in_use": company.smtp_auth_method == AuthMethod.XOAUTH2,
        },
    )


def _settings_page(
    request: HttpRequest, mailbox: Mailbox, template: str, context: dict[str, Any]
) -> HttpResponse:
    connection = services.connection_get(mailbox.owner)
    if request.method == "POST":
        form = OAuthSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.connection_save(
                    actor=request.user,
                    owner=mailbox.owner,
                    values=services.OAuthSettingsInput(**form.cleaned_data),
                )
            except PostroomError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, "OAuth settings saved.")
                return redirect(mailbox.page)
    else:
        form = OAuthSettingsForm(initial=oauth_settings_initial(connection))
    return render(
        request,
        template,
        {
            **context,
            "form": form,
            "connection": connection,
            "mailbox": mailbox,
            "redirect_uri": redirect_uri(request),
            # Each page's actions are named after it: company_oauth_sign_in, ...
            "sign_in_url": reverse(f"{mailbox.page}_sign_in"),
            "token_url": reverse(f"{mailbox.page}_token"),
            "disconnect_url": reverse(f"{mailbox.page}_disconnect"),
            "providers": PROVIDERS,
            "delegated": Flow.DELEGATED,
        },
    )


def sign_in(request: HttpRequest, mailbox: Mailbox) -> HttpResponseBase:
    connection = services.connection_get(mailbox.owner)
    if connection is None:
        messages.error(request, "Save the OAuth settings first.")
        return redirect(mailbox.page)
    try:
        start = services.sign_in_start(connection, redirect_uri=redirect_uri(request))
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect(mailbox.page)
    request.session[SESSION_KEY] = {
        "state": start.state,
        "code_verifier": start.code_verifier,
        "owner": mailbox.owner,
        "page": mailbox.page,
    }
    return redirect(start.url)


def token_try(request: HttpRequest, mailbox: Mailbox) -> HttpResponseBase:
    connection = services.connection_get(mailbox.owner)
    if connection is None:
        messages.error(request, "Save the OAuth settings first.")
        return redirect(mailbox.page)
    try:
        services.token_try(connection, mailbox=mailbox.login)
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The provider gave Postroom a token: the sign-in works.")
    return redirect(mailbox.page)


def disconnect(request: HttpRequest, mailbox: Mailbox) -> HttpResponseBase:
    if services.connection_delete(actor=request.user, owner=mailbox.owner):
        messages.success(request, "The OAuth sign-in and its tokens are removed.")
    return redirect(mailbox.page)


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponseBase:
    pending = request.session.pop(SESSION_KEY, None)
    if not pending or not _may_manage(request.user, pending["owner"]):
        messages.error(request, "No sign-in was waiting for this answer: start it again.")
        return redirect("dashboard")
    page = pending["page"]
    if request.GET.get("state") != pending["state"]:
        messages.error(request, "The provider's answer did not match the sign-in: start again.")
        return redirect(page)
    if refusal := request.GET.get("error"):
        description = request.GET.get("error_description", "")
        messages.error(
            request,
            f"The provider did not sign you in: {refusal}"
            + (f" ({description[:300]})" if description else "")
            + ".",
        )
        return redirect(page)
    connection = services.connection_get(pending["owner"])
    if connection is None:
        return redirect(page)
    try:
        services.sign_in_finish(
            connection,
            actor=request.user,
            redirect_uri=redirect_uri(request),
            code=request.GET.get("code", ""),
            code_verifier=pending["code_verifier"],
        )
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Signed in: Postroom keeps the sign-in and renews it itself.")
    return redirect(page)


@require_GET
def profile_mailbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    mailbox = own_mailbox(user)
    company = services.connection_get(COMPANY_OWNER)
    return render(
        request,
        "web/users/mailbox.html",
        {
            "connection": services.connection_get(mailbox.owner),
            "mailbox": mailbox,
            "company_app": company if company and company.flow == Flow.DELEGATED else None,
            "delegated": Flow.DELEGATED,
            "sign_in_url": reverse("profile_mailbox_sign_in"),
            "token_url": reverse("profile_mailbox_token"),
            "disconnect_url": reverse("profile_mailbox_disconnect"),
        },
    )


@require_POST
def profile_mailbox_sign_in(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    try:
        services.own_mailbox_prepare(user)
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("profile_mailbox")
    return sign_in(request, own_mailbox(user))


@require_POST
def profile_mailbox_token(request: HttpRequest) -> HttpResponseBase:
    return token_try(request, own_mailbox(_user(request)))


@require_POST
def profile_mailbox_disconnect(request: HttpRequest) -> HttpResponseBase:
    return disconnect(request, own_mailbox(_user(request)))


@require_POST
@administrator_required
def company_oauth_sign_in(request: HttpRequest) -> HttpResponseBase:
    return sign_in(request, company_mailbox())


@require_POST
@administrator_required
def company_oauth_token(request: HttpRequest) -> HttpResponseBase:
    return token_try(request, company_mailbox())


@require_POST
@administrator_required
def company_oauth_disconnect(request: HttpRequest) -> HttpResponseBase:
    return disconnect(request, company_mailbox())


urlpatterns = [
    path("company/oauth/", company_oauth, name="company_oauth"),
    path("company/oauth/sign-in/", company_oauth_sign_in, name="company_oauth_sign_in"),
    path("company/oauth/token/", company_oauth_token, name="company_oauth_token"),
    path("company/oauth/disconnect/", company_oauth_disconnect, name="company_oauth_disconnect"),
    path("profile/mailbox/", profile_mailbox, name="profile_mailbox"),
    path("profile/mailbox/sign-in/", profile_mailbox_sign_in, name="profile_mailbox_sign_in"),
    path("profile/mailbox/token/", profile_mailbox_token, name="profile_mailbox_token"),
    path(
        "profile/mailbox/disconnect/", profile_mailbox_disconnect, name="profile_mailbox_disconnect"
    ),
    path("oauth/callback/", oauth_callback, name="oauth_callback"),
]
