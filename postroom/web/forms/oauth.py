"""The OAuth sign-in form: a provider, how Postroom signs in, the app registered there."""

from __future__ import annotations

from django import forms

from postroom.oauth.models import Flow, OAuthConnection, Provider


class OAuthSettingsForm(forms.Form):
    provider = forms.ChoiceField(label="Provider", choices=Provider.choices)
    flow = forms.ChoiceField(
        label="How Postroom signs in",
        choices=Flow.choices,
        help_text="Sign in as the mailbox: someone signs in once in the browser. App-only "
        "(Microsoft 365) and service accounts (Google Workspace) need no sign-in, only the "
        "app's own credentials.",
    )
    tenant = forms.CharField(
        label="Directory (tenant) ID",
        required=False,
        max_length=100,
        help_text="Microsoft 365: the tenant's ID or domain (Microsoft Entra admin center → "
        "Overview). Blank: any work account (organizations).",
    )
    client_id = forms.CharField(
        label="Client ID",
        max_length=300,
        help_text="The application (client) ID of the app registered for Postroom.",
        error_messages={"required": "Enter the client ID of the app registered at the provider."},
    )
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: blank keeps the stored one. Needed for app-only sign-in and for "
        "Google's web clients; a public client signs in with PKCE alone.",
    )
    service_account_key = forms.CharField(
        label="Service account key (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Google Workspace service accounts: paste the JSON key file. Write-only: "
        "blank keeps the stored one.",
    )
    authorization_endpoint = forms.CharField(
        label="Authorization endpoint",
        required=False,
        max_length=500,
        help_text="Blank: the provider's own.",
    )
    token_endpoint = forms.CharField(
        label="Token endpoint",
        required=False,
        max_length=500,
        help_text="Blank: the provider's own.",
    )
    scope = forms.CharField(
        label="Scopes",
        required=False,
        max_length=500,
        help_text="Blank: the provider's scopes for sending mail.",
    )


def oauth_settings_initial(connection: OAuthConnection | None) -> dict[str, str]:
    if connection is None:
        return {"provider": Provider.MICROSOFT365, "flow": Flow.DELEGATED}
    return {
        name: getattr(connection, name)
        for name in (
            "provider",
            "flow",
            "tenant",
            "client_id",
            "authorization_endpoint",
            "token_endpoint",
            "scope",
        )
    }
