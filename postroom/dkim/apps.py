from django.apps import AppConfig


class DkimConfig(AppConfig):
    name = "postroom.dkim"
    label = "dkim"
    verbose_name = "DKIM signing"
