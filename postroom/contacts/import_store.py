"""The CSV import's database side: look up the contacts a file names, and write an import
plan in bulk. The caller holds the transaction (postroom.contacts.import_jobs).

Rows are written with plain INSERT and UPDATE statements run by `executemany` on SQLite,
and with COPY on PostgreSQL. The ORM's bulk_create and bulk_update build a model instance
and compile every value of every row, and bulk_update writes a CASE expression per field:
for 100,000 contacts that took minutes on a small machine, where these take seconds. The
statements name only columns of Postroom's own models, quoted by the connection, and every
value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

from postroom.accounts.models import User
from postroom.contacts import import_plan
from postroom.contacts.fields import organization_name_key
from postroom.contacts.import_plan import ExistingContact, ImportPlan
from postroom.contacts.models import Contact, Organization, Tag

# SQLite before 3.32 allowed 999 variables per statement; 500 keys stay well below it.
LOOKUP_CHUNK = 500
# Rows per batch written: progress is reported after each one.
WRITE_BATCH = 2000

T = TypeVar("T")
Progress = Callable[[int], None]

_CONTACT_COLUMNS = [name for name in import_plan.CONTACT_DEFAULTS if name != "organization"]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_contacts(keys: Sequence[str], *, progress: Progress) -> dict[str, ExistingContact]:
    """The contacts whose address key is in `keys`, with their tags, by key."""
    existing: dict[str, ExistingContact] = {}
    by_id: dict[int, ExistingContact] = {}
    for done, chunk in enumerate(chunks(keys, LOOKUP_CHUNK), 1):
        rows = Contact.objects.filter(email_key__in=chunk).values_list(
            "id", "email", "email_key", "organization__name", *_CONTACT_COLUMNS
        )
        for contact_id, email, key, organization, *values in rows:
            contact = ExistingContact(
                id=contact_id,
                email=email,
                values={
                    "organization": organization or "",
                    **dict(zip(_CONTACT_COLUMNS, values, strict=True)),
                },
                tags=set(),
            )
            existing[key] = by_id[contact_id] = contact
        if by_id:
            tagged = Contact.tags.through.objects.filter(
                contact_id__in=[existing[key].id for key in chunk if key in existing]
            ).values_list("contact_id", "tag__name")
            for contact_id, tag in tagged:
                by_id[contact_id].tags.add(tag)
        progress(min(done * LOOKUP_CHUNK, len(keys)))
    return existing


def _ids_by(model: type[Model], column: str, keys: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(list(keys), LOOKUP_CHUNK):
        rows = model._default_manager.filter(**{f"{column}__in": chunk}).values_list(column, "id")
        found.update(rows)
    return found


# Identifiers in the SQL below come from the models' own metadata, quoted by the database
# backend; every value is a bound parameter.
def _column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(_field(model, name).column)


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)  # a concrete column, not a reverse relation
    return field


def _insert(
    model: type[Model],
    names: list[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    if not rows:
        return
    table = _table(model)
    columns = ", ".join(_column(model, name) for name in names)
    if connection.vendor != "postgresql":
        # SQLite runs in-process: one prepared statement per row is the fastest there is.
        # ON CONFLICT DO NOTHING is understood by SQLite 3.24+.
        placeholders = ", ".join(["%s"] * len(names))
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        with connection.cursor() as cursor:
            insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}){conflict}"  # noqa: S608
            cursor.executemany(insert, rows)
        return
    if not ignore_conflicts:
        _copy(f"{table} ({columns})", rows)
        return
    with _staging(model, names, rows) as staging, connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "  # noqa: S608 - quoted model identifiers; values are parameters
            "ON CONFLICT DO NOTHING"
        )


def _update(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Set the `names` columns of contacts; each row is their values, then the id."""
    table, id_column = _table(Contact), _column(Contact, "id")
    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{_column(Contact, name)} = %s" for name in names)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {id_column} = %s", rows)  # noqa: S608 - quoted model identifiers; values are parameters
        return
    assignments = ", ".join(
        f"{_column(Contact, name)} = s.{_column(Contact, name)}" for name in names
    )
    with _staging(Contact, [*names, "id"], rows) as staging, connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM {staging} AS s "  # noqa: S608 - quoted model identifiers; values are parameters
            f"WHERE {table}.{id_column} = s.{id_column}"
        )


# PostgreSQL: each statement costs a round trip, and psycopg parses a statement's
# placeholders in Python, so rows go in with COPY, the server's bulk load. Updates and
# inserts that may conflict go through a temporary table filled by COPY.
_STAGING_TABLE = "postroom_contacts_import_staging"


def _copy(target: str, rows: Sequence[tuple[Any, ...]]) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@contextmanager
def _staging(
    model: type[Model], names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> Iterator[str]:
    table = connection.ops.quote_name(_STAGING_TABLE)
    definition = ", ".join(
        f"{_column(model, name)} {_field(model, name).db_type(connection)}" for name in names
    )
    columns = ", ".join(_column(model, name) for name in names)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ({definition}) ON COMMIT DROP")
    _copy(f"{table} ({columns})", rows)
    yield table
    # Not in a `finally`: after an error the transaction is aborted and rolls the table
    # back anyway, and a DROP would only hide the error with "transaction is aborted".
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")


def _datetime(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _organizations_ensure(names: dict[str, str], now: Any) -> tuple[dict[str, int], int]:
    """Company ids by name key, creating those missing; and how many were created."""
    ids = _ids_by(Organization, "name_key", names)
    missing = [(name, key, "", "", now, now) for key, name in names.items() if key not in ids]
    _insert(
        Organization,
        ["name", "name_key", "website", "notes", "created_at", "updated_at"],
        missing,
    )
    ids.update(_ids_by(Organization, "name_key", [row[1] for row in missing]))
    return ids, len(missing)


def _tags_ensure(names: set[str]) -> tuple[dict[str, int], int]:
    ids = _ids_by(Tag, "name", names)
    missing = [(name,) for name in sorted(names - ids.keys())]
    _insert(Tag, ["name"], missing)
    ids.update(_ids_by(Tag, "name", [row[0] for row in missing]))
    return ids, len(missing)


class _Values:
    """Turns plan values into column values, remembering what repeats (company names,
    the import's own timestamp on every consent): per-row work adds up over 100,000 rows."""

    def __init__(self, organization_ids: dict[str, int]) -> None:
        self.organization_ids = organization_ids
        self.organizations: dict[str, int] = {}
        self.datetimes: dict[datetime, Any] = {}

    def __call__(self, name: str, value: Any) -> Any:
        if name == "organization":
            if not value:
                return None
            if value not in self.organizations:
                self.organizations[value] = self.organization_ids[organization_name_key(value)]
            return self.organizations[value]
        if name == "marketing_consent_at" and value is not None:
            if value not in self.datetimes:
                self.datetimes[value] = _datetime(value)
            return self.datetimes[value]
        return value


def plan_write(plan: ImportPlan, *, actor: User | None, progress: Progress) -> tuple[int, int]:
    """Write the plan's new and changed contacts and their tags. Return how many companies
    and tags were created."""
    now = _datetime(timezone.now())
    organization_ids, organizations_created = _organizations_ensure(plan.organization_names(), now)
    tag_ids, tags_created = _tags_ensure(plan.tag_names())
    column_value = _Values(organization_ids)
    Through = Contact.tags.through
    actor_id = actor.pk if actor is not None else None
    written = 0

    names = ["organization", *_CONTACT_COLUMNS]
    insert_names = ["email", "email_key", *names, "created_at", "updated_at", "created_by"]
    for batch in chunks(plan.creates, WRITE_BATCH):
        rows = [
            (
                parsed.email,
                parsed.key,
                *[column_value(name, values[name]) for name in names],
                now,
                now,
                actor_id,
            )
            for parsed, values in batch
        ]
        _insert(Contact, insert_names, rows)
        contact_ids = _ids_by(Contact, "email_key", [parsed.key for parsed, _ in batch])
        links = [
            (contact_ids[parsed.key], tag_ids[tag]) for parsed, _ in batch for tag in parsed.tags
        ]
        _insert(Through, ["contact", "tag"], links)
        written += len(batch)
        progress(written)

    # One UPDATE statement per set of changed fields, so each sets only what changed.
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    links = []
    for update in plan.updates:
        changed = tuple(sorted(update.changes))
        values = [column_value(name, update.changes[name]) for name in changed]
        groups.setdefault(changed, []).append((*values, now, update.existing.id))
        links.extend((update.existing.id, tag_ids[tag]) for tag in update.tags_added)
    for changed, rows in groups.items():
        for rows_batch in chunks(rows, WRITE_BATCH):
            _update([*changed, "updated_at"], rows_batch)
            written += len(rows_batch)
            progress(written)
    # A tag someone added by hand meanwhile is not an error.
    _insert(Through, ["contact", "tag"], links, ignore_conflicts=True)
    return organizations_created, tags_created
