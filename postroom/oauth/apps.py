from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "postroom.oauth"
    label = "oauth"
    verbose_name = "OAuth sign-in for SMTP"
