from django.apps import AppConfig


class QueueConfig(AppConfig):
    """The queue toolkit and the job table: at the bottom, beside core; it depends on no app."""

    name = "postroom.queue"
    label = "queue"
