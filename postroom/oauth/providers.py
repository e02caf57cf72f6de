"""What Postroom knows of each OAuth provider: endpoints, scopes, its SMTP server, the flows it
offers and the steps to register Postroom there (docs/smtp-settings.md has them in full).

The endpoints are stored on each connection, filled in from here, so a national cloud or a
provider of the generic kind is a matter of editing them.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.oauth.models import Flow, Provider

MICROSOFT_LOGIN = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
# Delegated: the SMTP.Send permission, and offline_access for a refresh token.
MICROSOFT_DELEGATED_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
# App-only: the application permissions granted to the service principal.
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"


@dataclass(frozen=True)
class ProviderInfo:
    provider: Provider
    smtp_host: str
    smtp_port: int
    flows: tuple[Flow, ...]
    # Extra parameters of the authorization request (Google issues a refresh token only
    # with access_type=offline, and again only with prompt=consent).
    authorize_params: tuple[tuple[str, str], ...] = ()

    def endpoints(self, tenant: str) -> tuple[str, str]:
        """(authorization endpoint, token endpoint)."""
        if self.provider == Provider.MICROSOFT365:
            base = MICROSOFT_LOGIN.format(tenant=tenant or "organizations")
            return f"{base}/authorize", f"{base}/token"
        if self.provider == Provider.GOOGLE:
            return (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
            )
        return "", ""

    def scope(self, flow: str) -> str:
        if self.provider == Provider.MICROSOFT365:
            return MICROSOFT_APP_SCOPE if flow == Flow.APP_ONLY else MICROSOFT_DELEGATED_SCOPE
        if self.provider == Provider.GOOGLE:
            return GOOGLE_SCOPE
        return ""


PROVIDERS = {
    Provider.MICROSOFT365: ProviderInfo(
        Provider.MICROSOFT365,
        smtp_host="smtp.office365.com",
        smtp_port=587,
        flows=(Flow.DELEGATED, Flow.APP_ONLY),
    ),
    Provider.GOOGLE: ProviderInfo(
        Provider.GOOGLE,
        smtp_host="smtp.gmail.com",
        smtp_port=587,
        flows=(Flow.DELEGATED, Flow.SERVICE_ACCOUNT),
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
    Provider.GENERIC: ProviderInfo(
        Provider.GENERIC,
        smtp_host="",
        smtp_port=587,
        flows=(Flow.DELEGATED, Flow.APP_ONLY),
    ),
}


def provider_info(provider: str) -> ProviderInfo:
    return PROVIDERS[Provider(provider)]
