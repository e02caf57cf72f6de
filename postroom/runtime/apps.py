from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """The program's wiring: `postroom run` and `postroom worker` start the parts together."""

    name = "postroom.runtime"
    label = "runtime"
