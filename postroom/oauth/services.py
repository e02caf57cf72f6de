"""Set up an OAuth sign-in, sign in, and forget it: the changes people make, audited.

The audit log names what changed (a secret as "set", never its value). A change of provider,
flow, client or endpoints forgets the tokens: they belong to the old settings, and mail must
not keep leaving through a sign-in nobody can see any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from postroom.audit.services import audit_record
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_encrypt
from postroom.oauth import flows
from postroom.oauth.models import COMPANY_OWNER, Flow, OAuthConnection, Provider, user_owner
from postroom.oauth.providers import provider_info
from postroom.oauth.tokens import access_token_get, client_settings, tokens_store

if TYPE_CHECKING:  # annotations only: the accounts app sits above this one
    from postroom.accounts.models import User

CONFIGURED = "oauth.configured"
SIGNED_IN = "oauth.signed_in"
DISCONNECTED = "oauth.disconnected"

# (field, label) whose change needs a new sign-in.
_SIGN_IN_FIELDS = (
    ("provider", "Provider"),
    ("flow", "Sign-in kind"),
    ("tenant", "Directory (tenant) ID"),
    ("client_id", "Client ID"),
    ("authorization_endpoint", "Authorization endpoint"),
    ("token_endpoint", "Token endpoint"),
    ("scope", "Scopes"),
)


@dataclass(frozen=True)
class OAuthSettingsInput:
    provider: str
    flow: str
    client_id: str
    tenant: str = ""
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    scope: str = ""
    client_secret: str = field(default="", repr=False)  # blank keeps the stored one
    service_account_key: str = field(default="", repr=False)  # blank keeps the stored one


def connection_get(owner: str) -> OAuthConnection | None:
    return OAuthConnection.objects.filter(owner=owner).first()


def _clean(values: OAuthSettingsInput) -> dict[str, str]:
    if values.provider not in Provider.values:
        raise ValidationError("Choose a provider from the list.", field="provider")
    info = provider_info(values.provider)
    if values.flow not in info.flows:
        raise ValidationError(
            f"{Provider(values.provider).label} does not offer “{Flow(values.flow).label}”"
            if values.flow in Flow.values
            else "Choose how Postroom signs in.",
            field="flow",
        )
    if not values.client_id.strip():
        raise ValidationError(
            "Enter the client ID of the app registered at the provider.", field="client_id"
        )
    authorize, token = info.endpoints(values.tenant.strip())
    clean = {
        "provider": values.provider,
        "flow": values.flow,
        "tenant": values.tenant.strip(),
        "client_id": values.client_id.strip(),
        "authorization_endpoint": values.authorization_endpoint.strip() or authorize,
        "token_endpoint": values.token_endpoint.strip() or token,
        "scope": " ".join(values.scope.split()) or info.scope(values.flow),
    }
    if not clean["token_endpoint"]:
        raise ValidationError("Enter the provider's token endpoint.", field="token_endpoint")
    if values.flow == Flow.DELEGATED and not clean["authorization_endpoint"]:
        raise ValidationError(
            "Enter the provider's authorization endpoint.", field="authorization_endpoint"
        )
    if not clean["scope"]:
        raise ValidationError("Enter the scopes that allow sending mail.", field="scope")
    for name in ("authorization_endpoint", "token_endpoint"):
        if clean[name] and not clean[name].startswith(("https://", "http://127.0.0.1")):
            raise ValidationError("The endpoint must be an https:// address.", field=name)
    if values.service_account_key:
        flows.service_account_key_parse(values.service_account_key)  # refuses in words
    return clean


def connection_save(
    *,
    actor: User | AnonymousUser,
    owner: str,
    values: OAuthSettingsInput,
    user: User | None = None,
) -> OAuthConnection:
    """Create or change the OAuth settings of `owner` ("company" or a user's)."""
    try:
        clean = _clean(values)
    except flows.OAuthTokenError as error:
        raise ValidationError(error.message, field="service_account_key") from None
    with transaction.atomic():
        connection = OAuthConnection.objects.select_for_update().filter(owner=owner).first()
        is_new = connection is None
        if connection is None:
            connection = OAuthConnection(owner=owner, user=user)
        changed = {
            label: clean[name]
            for name, label in _SIGN_IN_FIELDS
            if getattr(connection, name) != clean[name]
        }
        for name, value in clean.items():
            setattr(connection, name, value)
        if values.client_secret:
            connection.client_secret_encrypted = secret_encrypt(values.client_secret)
            changed["Client secret"] = "set"
        if values.service_account_key:
            connection.service_account_key_encrypted = secret_encrypt(values.service_account_key)
            changed["Service account key"] = "set"
        if not is_new and changed.keys() & {label for _, label in _SIGN_IN_FIELDS}:
            _forget_tokens(connection)
        connection.save()
        if owner == COMPANY_OWNER:
            _own_mailboxes_follow(connection)
        if changed:
            audit_record(
                actor=actor, action=CONFIGURED, subject=_subject(connection), changes=changed
            )
    return connection


# The app's settings a user's own mailbox takes from the company's sign-in.
_APP_FIELDS = (
    "provider",
    "flow",
    "tenant",
    "client_id",
    "client_secret_encrypted",
    "authorization_endpoint",
    "token_endpoint",
    "scope",
)


def _own_mailboxes_follow(company: OAuthConnection) -> None:
    """Keep the users' own mailboxes on the company's app; a changed app means signing in
    again, as for the company."""
    for connection in OAuthConnection.objects.exclude(owner=COMPANY_OWNER):
        if all(getattr(connection, name) == getattr(company, name) for name in _APP_FIELDS):
            continue
        is_same_app = all(
            getattr(connection, name) == getattr(company, name)
            for name in _APP_FIELDS
            if name != "client_secret_encrypted"
        )
        _app_copy(company, connection)
        if not is_same_app:
            _forget_tokens(connection)
        connection.save()


def _app_copy(company: OAuthConnection, connection: OAuthConnection) -> None:
    for name in _APP_FIELDS:
        setattr(connection, name, getattr(company, name))


def own_mailbox_prepare(user: User) -> OAuthConnection:
    """The sign-in of `user`'s own mailbox, on the company's app, ready to sign in."""
    company = connection_get(COMPANY_OWNER)
    if company is None or company.flow != Flow.DELEGATED:
        raise ValidationError(
            "Connecting your own mailbox needs the company's OAuth app (signing in as a "
            "mailbox): ask an administrator to set it up under Company → OAuth sign-in."
        )
    if not user.email:
        raise ValidationError("Your user has no email address: add it to your profile first.")
    connection, _ = OAuthConnection.objects.get_or_create(
        owner=user_owner(user.pk),
        defaults={name: getattr(company, name) for name in _APP_FIELDS} | {"user": user},
    )
    return connection


def _forget_tokens(connection: OAuthConnection) -> None:
    connection.access_token_encrypted = ""
    connection.access_expires_at = None
    connection.refresh_token_encrypted = ""
    connection.refresh_expires_at = None
    connection.signed_in_at = None


def _subject(connection: OAuthConnection) -> str:
    if connection.user is not None:
        return f"OAuth sign-in of {connection.user.username}'s mailbox"
    return "OAuth sign-in of the company relay"


def sign_in_start(connection: OAuthConnection, *, redirect_uri: str) -> flows.SignInStart:
    if connection.flow != Flow.DELEGATED:
        raise ValidationError("This sign-in kind needs no browser sign-in: use Get a token.")
    return flows.sign_in_start(client_settings(connection), redirect_uri=redirect_uri)


def sign_in_finish(
    connection: OAuthConnection,
    *,
    actor: User | AnonymousUser,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> None:
    """Exchange the provider's code for tokens and keep them (the refresh token above all)."""
    tokens = flows.sign_in_finish(
        client_settings(connection),
        redirect_uri=redirect_uri,
        code=code,
        code_verifier=code_verifier,
    )
    if not tokens.refresh_token:
        raise flows.OAuthTokenError(
            "The provider gave no refresh token, so Postroom could send only for an hour. "
            "Microsoft 365: the scopes must include offline_access. Google: remove Postroom "
            "under myaccount.google.com → Security → Third-party apps, then sign in again."
        )
    connection.signed_in_at = timezone.now()
    tokens_store(connection, tokens)
    audit_record(actor=actor, action=SIGNED_IN, subject=_subject(connection), changes={})


def token_try(connection: OAuthConnection, *, mailbox: str) -> None:
    """Get a token now (app-only and service accounts have no sign-in): the way to test them."""
    access_token_get(connection, mailbox=mailbox, renew=True)


def connection_delete(*, actor: User | AnonymousUser, owner: str) -> bool:
    """Forget a sign-in; the company's takes the users' own mailboxes with it (they use its
    app)."""
    deleted: Any = OAuthConnection.objects.filter(owner=owner).first()
    if deleted is None:
        return False
    subject = _subject(deleted)
    if owner == COMPANY_OWNER:
        OAuthConnection.objects.exclude(owner=COMPANY_OWNER).delete()
    deleted.delete()
    audit_record(actor=actor, action=DISCONNECTED, subject=subject, changes={})
    return True
