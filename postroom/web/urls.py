"""Pages. Each area keeps its views and routes in one module under postroom/web/views/."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from postroom.web.views.login import LoginView
from postroom.web.views.users import PasswordChangeView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("postroom.web.views.dashboard")),
    path("administration/", include("postroom.web.views.administration")),
    path("company/", include("postroom.web.views.company")),
    path("company/smtp/", include("postroom.web.views.smtp_check")),
    path("company/domains/", include("postroom.web.views.domains")),
    path("company/dkim/", include("postroom.web.views.dkim")),
    path("company/bounces/", include("postroom.web.views.bounces")),
    path("", include("postroom.web.views.oauth")),
    path("", include("postroom.web.views.users")),
    path("audit/", include("postroom.web.views.audit")),
    path("outbox/", include("postroom.web.views.outbox")),
    path("inbox/", include("postroom.web.views.inbox")),
    path("contacts/", include("postroom.web.views.contacts")),
    path("", include("postroom.web.views.compose")),
    path("", include("postroom.web.views.campaigns")),
    path("audiences/", include("postroom.web.views.audiences")),
    path("reports/", include("postroom.web.views.reports")),
    path("api-keys/", include("postroom.web.views.api_keys")),
    path("smtp-credentials/", include("postroom.web.views.smtp_credentials")),
    path("webhooks/", include("postroom.web.views.webhooks")),
    path("help/", include("postroom.web.views.help")),
]
