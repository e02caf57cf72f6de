from django.apps import AppConfig


class SmtpdConfig(AppConfig):
    name = "postroom.smtpd"
    label = "smtpd"
    verbose_name = "SMTP listener"
