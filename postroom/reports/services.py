"""Change data sources and reports (administrators), each change audited.

A data source's password arrives here as plaintext only to be encrypted at once, as the SMTP
password is (postroom.company.services): never logged, audited (only "set", "replaced" or
"cleared"), returned or shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from postroom.accounts.models import Role, User
from postroom.audit.services import audit_record

# The one rule of a write-only password (keep, replace or clear), the SMTP password's.
from postroom.company.services import _secret_change
from postroom.core.errors import PermissionDeniedError, ValidationError
from postroom.mail.header_text import reject_control_characters
from postroom.reports import sources
from postroom.reports.builtins import BUILTIN_PARAMETERS, BUILTINS
from postroom.reports.charts import MAX_SERIES
from postroom.reports.models import ChartKind, DataSource, Report, ReportFormat, SourceKind
from postroom.reports.parameters import parameters_clean
from postroom.reports.sqltext import sql_clean

NAME_MAX_LENGTH = 200
_AUDIT_TEXT_MAX = 2000  # an audit entry keeps this much of a query


def admin_check(actor: User | None) -> None:
    """Only administrators change data sources and reports (None: Postroom itself)."""
    if actor is not None and not (actor.is_active and actor.is_administrator):
        raise PermissionDeniedError("Only administrators write reports and manage data sources.")


def _name_clean(name: str, *, what: str) -> str:
    name = " ".join(name.split())
    reject_control_characters(name, label="Name", what=f"the {what}'s name", field="name")
    if not name:
        raise ValidationError(f"Give the {what} a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"A name has at most {NAME_MAX_LENGTH} characters.", field="name")
    return name


# Data sources.


@dataclass(frozen=True)
class SourceInput:
    name: str
    kind: str
    host: str = ""
    port: int | None = None
    database: str = ""
    username: str = ""
    password: str = ""
    password_clear: bool = False
    url: str = ""


_SOURCE_FIELDS = (
    ("name", "Name"),
    ("kind", "Kind"),
    ("host", "Host"),
    ("port", "Port"),
    ("database", "Database"),
    ("username", "User"),
    ("url", "URL"),
)


def source_clean(values: SourceInput) -> dict[str, Any]:
    if values.kind not in SourceKind.values:
        raise ValidationError("Choose the kind of database.", field="kind")
    clean: dict[str, Any] = {
        "name": _name_clean(values.name, what="data source"),
        "kind": values.kind,
        "host": values.host.strip(),
        "port": values.port,
        "database": values.database.strip(),
        "username": values.username.strip(),
        "url": "",
    }
    for name in ("host", "database", "username"):
        reject_control_characters(clean[name], label=name, what=f"the {name}", field=name)
    if values.port is not None and not 1 <= values.port <= 65535:
        raise ValidationError("A port is a number from 1 to 65535.", field="port")
    if values.kind in (SourceKind.POSTGRESQL, SourceKind.MYSQL):
        if not clean["host"]:
            raise ValidationError("Give the database server's host name or address.", field="host")
        if not clean["database"]:
            raise ValidationError("Give the database's name.", field="database")
    elif values.kind == SourceKind.SQLITE:
        clean.update(host="", port=None, username="")
        clean["database"] = str(sources.sqlite_path_check(clean["database"]))
    else:
        clean.update(host="", port=None, database="", username="")
        clean["url"] = sources.url_clean(values.url).render_as_string(hide_password=False)
    return clean


def source_save(
    *, actor: User | None, values: SourceInput, source: DataSource | None = None
) -> DataSource:
    """Create (source None) or change a data source, and audit what changed."""
    admin_check(actor)
    clean = source_clean(values)
    with transaction.atomic():
        is_new = source is None
        source = source or DataSource(created_by=actor)
        changes: dict[str, Any] = {}
        for name, label in _SOURCE_FIELDS:
            old = None if is_new else getattr(source, name)
            if old != clean[name]:
                changes[label] = {"from": old, "to": clean[name]}
                setattr(source, name, clean[name])
        token, what = _secret_change(
            stored=source.password_encrypted,
            new_plaintext=values.password,
            clear=values.password_clear,
            field="password_clear",
        )
        if what is not None:
            source.password_encrypted = token
            changes["Password"] = {"changed": True, "secret": what}
        if not changes:
            return source
        try:
            with transaction.atomic():
                source.save()
        except IntegrityError:
            raise ValidationError("Another data source has this name.", field="name") from None
        audit_record(
            actor=actor,
            action="report_source.created" if is_new else "report_source.updated",
            subject=f"data source {source.name}",
            changes=changes,
        )
    return source


def source_delete(*, actor: User | None, source: DataSource) -> None:
    admin_check(actor)
    if source.reports.exists():
        raise ValidationError(
            f"Reports read from {source.name}: delete them, or point them at another source, first."
        )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="report_source.deleted",
            subject=f"data source {source.name}",
            changes={"Name": {"from": source.name, "to": None}},
        )
        source.delete()


# Reports.


@dataclass(frozen=True)
class ReportInput:
    name: str
    data_source_id: int | None = None
    builtin: str = ""
    sql: str = ""
    description: str = ""
    parameters: list[dict[str, Any]] = field(default_factory=list)
    format: str = ReportFormat.CSV
    chart: str = ""
    chart_label_column: str = ""
    chart_value_columns: list[str] = field(default_factory=list)
    shared_roles: list[str] = field(default_factory=list)
    shared_user_ids: list[int] = field(default_factory=list)


def report_clean(values: ReportInput) -> dict[str, Any]:
    clean: dict[str, Any] = {
        "name": _name_clean(values.name, what="report"),
        "description": values.description.strip(),
        "format": values.format,
        "chart": values.chart,
    }
    if values.format not in ReportFormat.values:
        raise ValidationError("Choose CSV, XLSX or PDF.", field="format")
    if values.data_source_id is None:
        if values.builtin not in BUILTINS:
            raise ValidationError(
                "Choose a built-in report, or a data source and SQL.", field="builtin"
            )
        clean.update(data_source=None, builtin=values.builtin, sql="")
        parameters = values.parameters or BUILTIN_PARAMETERS
    else:
        source = DataSource.objects.filter(pk=values.data_source_id).first()
        if source is None:
            raise ValidationError("Choose a data source.", field="data_source")
        sql = sql_clean(values.sql, is_mysql=source.kind == SourceKind.MYSQL)
        clean.update(data_source=source, builtin="", sql=sql)
        parameters = values.parameters
    clean["parameters"] = parameters_clean(parameters)
    clean.update(_chart_clean(values))
    unknown = set(values.shared_roles) - set(Role.values)
    if unknown:
        raise ValidationError(
            "Give the report to administrators, staff or marketers.", field="shared_roles"
        )
    clean["shared_roles"] = sorted(set(values.shared_roles) - {Role.ADMINISTRATOR})
    return clean


def _chart_clean(values: ReportInput) -> dict[str, Any]:
    if values.chart not in ChartKind.values:
        raise ValidationError("Choose bars, a line or no chart.", field="chart")
    label = values.chart_label_column.strip()
    columns = [column.strip() for column in values.chart_value_columns if column.strip()]
    if not values.chart:
        return {"chart_label_column": "", "chart_value_columns": []}
    if not label or not columns:
        raise ValidationError(
            "Name the column that labels the chart and at least one column of numbers.",
            field="chart_value_columns",
        )
    if len(columns) > MAX_SERIES:
        raise ValidationError(
            f"A chart shows at most {MAX_SERIES} columns.", field="chart_value_columns"
        )
    return {"chart_label_column": label, "chart_value_columns": columns}


def _audit_value(value: Any) -> Any:
    if isinstance(value, DataSource):
        return value.name
    if isinstance(value, str) and len(value) > _AUDIT_TEXT_MAX:
        return value[:_AUDIT_TEXT_MAX] + "…"
    return value


_REPORT_FIELDS = (
    ("name", "Name"),
    ("description", "Description"),
    ("data_source", "Data source"),
    ("builtin", "Built-in report"),
    ("sql", "SQL"),
    ("parameters", "Parameters"),
    ("format", "Format"),
    ("chart", "Chart"),
    ("chart_label_column", "Chart labels"),
    ("chart_value_columns", "Chart values"),
    ("shared_roles", "Given to roles"),
)


def report_save(*, actor: User | None, values: ReportInput, report: Report | None = None) -> Report:
    """Create (report None) or change a report, and audit what changed."""
    admin_check(actor)
    clean = report_clean(values)
    users = list(User.objects.filter(pk__in=values.shared_user_ids, is_active=True))
    with transaction.atomic():
        is_new = report is None
        report = report or Report(owner=actor)
        changes: dict[str, Any] = {}
        for name, label in _REPORT_FIELDS:
            old = None if is_new else getattr(report, name)
            if old != clean[name]:
                changes[label] = {"from": _audit_value(old), "to": _audit_value(clean[name])}
                setattr(report, name, clean[name])
        report.save()
        old_users = set() if is_new else set(report.shared_users.values_list("username", flat=True))
        new_users = {user.username for user in users}
        if old_users != new_users:
            report.shared_users.set(users)
            changes["Given to users"] = {"from": sorted(old_users), "to": sorted(new_users)}
        if changes:
            audit_record(
                actor=actor,
                action="report.created" if is_new else "report.updated",
                subject=f"report {report.name}",
                changes=changes,
            )
    return report


def report_delete(*, actor: User | None, report: Report) -> None:
    admin_check(actor)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="report.deleted",
            subject=f"report {report.name}",
            changes={
                "Name": {"from": report.name, "to": None},
                "Schedules": report.schedules.count(),
            },
        )
        report.delete()
