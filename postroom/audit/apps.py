from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: who changed what, when. Every area writes to it; it depends on none."""

    name = "postroom.audit"
    label = "audit"
