from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What operators and their machines ask a running Postroom: alive, ready, metrics."""

    name = "postroom.ops"
    label = "ops"
    verbose_name = "Operations"
