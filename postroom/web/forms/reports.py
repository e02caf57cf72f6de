"""The forms of the Reports pages. The rules are the services' (postroom.reports.services and
.schedules); a form turns what was typed into their inputs."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings

from postroom.accounts.models import Role, User
from postroom.contacts.models import Contact
from postroom.reports.builtins import BUILTINS
from postroom.reports.mailing import DEFAULT_BODY, DEFAULT_SUBJECT
from postroom.reports.models import ChartKind, DataSource, Frequency, ReportFormat, SourceKind
from postroom.reports.parameters import DATE_HELP, PARAMETER_TYPES, PERIOD_HELP
from postroom.reports.schedules import ScheduleInput
from postroom.reports.services import ReportInput, SourceInput
from postroom.reports.timing import MAX_MONTH_DAY, WEEKDAY_NAMES

KEEP_HELP = "Leave blank to keep the current password. It is stored encrypted and never shown."
BUILTIN_CHOICE = "builtin"
_MEGABYTE = 1024 * 1024


class SourceForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200, help_text="Such as “ERP”.")
    kind = forms.ChoiceField(label="Database", choices=SourceKind.choices)
    host = forms.CharField(
        label="Host",
        required=False,
        max_length=255,
        help_text="The server's name or address, such as erp-db.example.com.",
    )
    port = forms.IntegerField(
        label="Port",
        required=False,
        min_value=1,
        max_value=65535,
        help_text="Blank: the usual one (5432 PostgreSQL, 3306 MariaDB).",
    )
    database = forms.CharField(
        label="Database name or SQLite file",
        required=False,
        max_length=1000,
        help_text="For SQLite, the file's full path on the Postroom server.",
    )
    username = forms.CharField(
        label="User",
        required=False,
        max_length=200,
        help_text="Best a user that may only read: Postroom reads in a read-only transaction, "
        "and a read-only user makes sure of it.",
    )
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        help_text=KEEP_HELP,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    password_clear = forms.BooleanField(label="Clear the stored password", required=False)
    url = forms.CharField(
        label="SQLAlchemy URL",
        required=False,
        max_length=2000,
        help_text="For another database: dialect+driver://user@host:port/database, without "
        "the password (type it above). Its driver must be installed (docs: Reports).",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )

    def to_input(self) -> SourceInput:
        data = self.cleaned_data
        return SourceInput(
            name=data["name"],
            kind=data["kind"],
            host=data["host"],
            port=data["port"],
            database=data["database"],
            username=data["username"],
            password=data["password"],
            password_clear=data["password_clear"],
            url=data["url"],
        )


def source_initial(source: DataSource) -> dict[str, Any]:
    """What the form starts with: everything but the password, which never leaves."""
    return {
        "name": source.name,
        "kind": source.kind,
        "host": source.host,
        "port": source.port,
        "database": source.database,
        "username": source.username,
        "url": source.url,
    }


def parameters_text(parameters: list[dict[str, str]]) -> str:
    return "\n".join(f"{p['name']} {p['type']} {p['value']}".rstrip() for p in parameters)


def parameters_parse(text: str) -> list[dict[str, str]]:
    """One parameter a line: `name type value`, such as `period period last month`."""
    parameters = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in PARAMETER_TYPES:
            raise forms.ValidationError(
                f"Line {number}: write the name, the type ({', '.join(PARAMETER_TYPES)}) and "
                "the value, such as “period period last month”."
            )
        parameters.append(
            {"name": parts[0], "type": parts[1], "value": parts[2] if len(parts) > 2 else ""}
        )
    return parameters


class ReportForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    source = forms.ChoiceField(label="Data source")
    builtin = forms.ChoiceField(
        label="Built-in report",
        required=False,
        choices=[("", "—")] + [(key, item.name) for key, item in BUILTINS.items()],
        help_text="For Postroom's own database, which is read only through these.",
    )
    sql = forms.CharField(
        label="SQL",
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "code"}),
        help_text="One SELECT. Parameters are written :name and always bound, never pasted "
        "in; a period named p gives :p_start and :p_end (the day after its last). Inside a "
        "quoted text write a colon before a letter or digit as \\:.",
    )
    parameters = forms.CharField(
        label="Parameters",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=f"One a line: name, type ({', '.join(PARAMETER_TYPES)}), value. A date is "
        f"{DATE_HELP}. A period is {PERIOD_HELP}. Relative ones are resolved in the "
        "schedule's time zone when it runs.",
    )
    format = forms.ChoiceField(label="Format", choices=ReportFormat.choices)
    chart = forms.ChoiceField(
        label="Chart",
        choices=ChartKind.choices,
        required=False,
        help_text="Shown in the preview and drawn in the PDF.",
    )
    chart_label_column = forms.CharField(
        label="Chart labels: column", required=False, max_length=200
    )
    chart_value_columns = forms.CharField(
        label="Chart values: columns",
        required=False,
        max_length=800,
        help_text="Columns of numbers, separated by commas (up to 4).",
    )
    shared_roles = forms.MultipleChoiceField(
        label="Give it to every",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(Role.STAFF, "Staff user"), (Role.MARKETER, "Marketer")],
        help_text="They may preview, run and schedule it, not change it. Administrators "
        "always may.",
    )
    shared_users = forms.ModelMultipleChoiceField(
        label="Give it to these users",
        required=False,
        queryset=User.objects.filter(is_active=True).exclude(role=Role.ADMINISTRATOR),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        source: forms.ChoiceField = self.fields["source"]  # type: ignore[assignment]
        source.choices = [
            (BUILTIN_CHOICE, "Postroom (a built-in report)"),
            *((str(source.pk), source.name) for source in DataSource.objects.all()),
        ]

    def clean_parameters(self) -> list[dict[str, str]]:
        return parameters_parse(self.cleaned_data["parameters"])

    def to_input(self) -> ReportInput:
        data = self.cleaned_data
        source = data["source"]
        return ReportInput(
            name=data["name"],
            description=data["description"],
            data_source_id=None if source == BUILTIN_CHOICE else int(source),
            builtin=data["builtin"] if source == BUILTIN_CHOICE else "",
            sql=data["sql"],
            parameters=data["parameters"],
            format=data["format"],
            chart=data["chart"] or "",
            chart_label_column=data["chart_label_column"],
            chart_value_columns=[c for c in data["chart_value_columns"].split(",") if c.strip()],
            shared_roles=list(data["shared_roles"]),
            shared_user_ids=[user.pk for user in data["shared_users"]],
        )


def report_initial(report: Any) -> dict[str, Any]:
    return {
        "name": report.name,
        "description": report.description,
        "source": BUILTIN_CHOICE if report.is_builtin else str(report.data_source_id),
        "builtin": report.builtin,
        "sql": report.sql,
        "parameters": parameters_text(report.parameters),
        "format": report.format,
        "chart": report.chart,
        "chart_label_column": report.chart_label_column,
        "chart_value_columns": ", ".join(report.chart_value_columns),
        "shared_roles": report.shared_roles,
        "shared_users": list(report.shared_users.all()),
    }


def _zones() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ScheduleForm(forms.Form):
    frequency = forms.ChoiceField(label="How often", choices=Frequency.choices)
    time_of_day = forms.TimeField(
        label="At", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    weekday = forms.TypedChoiceField(
        label="On (weekly)",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—")] + list(enumerate(WEEKDAY_NAMES)),
    )
    month_day = forms.TypedChoiceField(
        label="On day (monthly)",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—")]
        + [(day, str(day)) for day in range(1, MAX_MONTH_DAY + 1)]
        + [(0, "the last day")],
    )
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=200,
        help_text="Five fields: minute hour day-of-month month day-of-week; “0 7 * * 1-5” is "
        "07:00 Monday to Friday. Times are on the clock of the time zone below.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=_zones)
    recipient_users = forms.ModelMultipleChoiceField(
        label="Users",
        required=False,
        queryset=User.objects.filter(is_active=True).exclude(email=""),
    )
    recipient_contacts = forms.CharField(
        label="Contacts",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Their addresses, one a line or separated by commas.",
    )
    recipient_addresses = forms.CharField(
        label="Other addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One a line or separated by commas.",
    )
    subject = forms.CharField(label="Subject", max_length=500)
    body = forms.CharField(
        label="Body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Merge fields: {{ report.name }}, {{ run.period }}, {{ run.rows }}, "
        "{{ run.date }}. Postroom adds a line about the attachment or the link.",
    )
    is_skip_if_empty = forms.BooleanField(
        label="Skip if empty",
        required=False,
        help_text="Send nothing when the query returns no rows.",
    )
    attach_max_mb = forms.IntegerField(
        label="Attach up to (MB)",
        min_value=0,
        max_value=max(settings.POSTROOM_MAX_MESSAGE_BYTES // _MEGABYTE, 1),
        help_text="A larger file goes as a signed download link that expires after "
        f"{settings.POSTROOM_REPORT_LINK_DAYS} days.",
    )

    def clean_recipient_contacts(self) -> list[int]:
        addresses = _split(self.cleaned_data["recipient_contacts"])
        found = dict(
            Contact.objects.filter(email_key__in=[a.lower() for a in addresses]).values_list(
                "email_key", "pk"
            )
        )
        unknown = [address for address in addresses if address.lower() not in found]
        if unknown:
            raise forms.ValidationError(
                f"No contact has the address {', '.join(unknown)}; add it under Other addresses "
                "instead, or add the contact first."
            )
        return list(found.values())

    def to_input(self) -> ScheduleInput:
        data = self.cleaned_data
        return ScheduleInput(
            frequency=data["frequency"],
            time_zone=data["time_zone"],
            subject=data["subject"],
            time_of_day=data["time_of_day"],
            weekday=data["weekday"],
            month_day=data["month_day"],
            cron=data["cron"],
            body=data["body"],
            recipient_user_ids=[user.pk for user in data["recipient_users"]],
            recipient_contact_ids=data["recipient_contacts"],
            recipient_addresses=_split(data["recipient_addresses"]),
            is_skip_if_empty=data["is_skip_if_empty"],
            attach_max_bytes=data["attach_max_mb"] * _MEGABYTE,
        )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def schedule_initial(schedule: Any) -> dict[str, Any]:
    return {
        "frequency": schedule.frequency,
        "time_of_day": schedule.time_of_day,
        "weekday": schedule.weekday,
        "month_day": schedule.month_day,
        "cron": schedule.cron,
        "time_zone": schedule.time_zone,
        "recipient_users": list(schedule.recipient_users.all()),
        "recipient_contacts": "\n".join(
            schedule.recipient_contacts.values_list("email", flat=True)
        ),
        "recipient_addresses": "\n".join(schedule.recipient_addresses),
        "subject": schedule.subject,
        "body": schedule.body,
        "is_skip_if_empty": schedule.is_skip_if_empty,
        "attach_max_mb": schedule.attach_max_bytes // _MEGABYTE,
    }


def schedule_defaults(*, user_time_zone: str) -> dict[str, Any]:
    return {
        "frequency": Frequency.DAILY,
        "time_of_day": dt.time(7, 0),
        "time_zone": user_time_zone,
        "subject": DEFAULT_SUBJECT,
        "body": DEFAULT_BODY,
        "attach_max_mb": settings.POSTROOM_REPORT_ATTACH_MAX_BYTES // _MEGABYTE,
    }
