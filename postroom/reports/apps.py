from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """The Report Writer Scheduler: data sources, reports, schedules and their runs."""

    name = "postroom.reports"
    label = "reports"
    verbose_name = "Reports"
