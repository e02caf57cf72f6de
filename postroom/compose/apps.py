from django.apps import AppConfig


class ComposeConfig(AppConfig):
    """Contact Email: a person (or the API) writes to contacts, with saved templates."""

    name = "postroom.compose"
    label = "compose"
    verbose_name = "Contact Email"
