from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "postroom.inbox"
    label = "inbox"
    verbose_name = "Capture inbox"
