"""Connections to a report's database, through SQLAlchemy Core, and their failures in words.

Every connection is opened for one query and closed after it (no pool: a report runs a few
times a day), and is made read-only where the database allows it, before the query:

- PostgreSQL (psycopg): a read-only session (`default_transaction_read_only`) and a
  read-only transaction, with `statement_timeout`;
- MariaDB and MySQL (PyMySQL): `SET SESSION TRANSACTION READ ONLY` and a transaction
  started READ ONLY, with `max_statement_time` (MariaDB) or `max_execution_time` (MySQL);
- SQLite: the file opened read-only (`mode=ro`) with `PRAGMA query_only`, and a progress
  handler that interrupts a query past the time limit;
- any other SQLAlchemy URL: a transaction that is always rolled back; the database user
  should be read-only (docs/reports.md).
The transaction is rolled back at the end in every case: Postroom never commits.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_decrypt
from postroom.reports.models import DataSource, SourceKind
from postroom.reports.table import ReportError

# Connecting to a database that does not answer: longer than any healthy handshake, short
# enough that Test connection answers while the person still waits.
CONNECT_TIMEOUT_SECONDS = 10
# How much of a database's own error message a run keeps (its first line).
DATABASE_WORDS_MAX = 300
# The SQLite progress handler runs every this many virtual machine instructions: about a
# millisecond of work, so a query stops within milliseconds of its time limit.
_SQLITE_PROGRESS_STEPS = 10_000


@dataclass(frozen=True)
class Target:
    """Where to connect: a URL with its password, and the dialect it speaks."""

    url: URL
    dialect: str  # "postgresql", "mysql", "sqlite" or another SQLAlchemy dialect name

    @property
    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)


def _password(source: DataSource) -> str | None:
    return secret_decrypt(source.password_encrypted) if source.password_encrypted else None


def sqlite_path_check(path: str) -> Path:
    """An SQLite file may be any file Postroom can read, except its own data directory
    (its database holds password hashes and encrypted secrets)."""
    if not path.strip():
        raise ValidationError("Give the SQLite file's full path.", field="database")
    resolved = Path(path).expanduser().resolve()
    data_dir = Path(settings.DATA_DIR).resolve()
    if resolved == data_dir or data_dir in resolved.parents:
        raise ValidationError(
            "That file is in Postroom's data directory. Postroom's own data is reported through "
            "the built-in reports only; choose another file.",
            field="database",
        )
    return resolved


def source_target(source: DataSource) -> Target:
    """The URL to connect to `source` (its password decrypted here, and only here)."""
    password = _password(source)
    if source.kind == SourceKind.POSTGRESQL:
        url = URL.create(
            "postgresql+psycopg",
            username=source.username or None,
            password=password,
            host=source.host or None,
            port=source.port,
            database=source.database or None,
        )
        return Target(url, "postgresql")
    if source.kind == SourceKind.MYSQL:
        url = URL.create(
            "mysql+pymysql",
            username=source.username or None,
            password=password,
            host=source.host or None,
            port=source.port,
            database=source.database or None,
            query={"charset": "utf8mb4"},
        )
        return Target(url, "mysql")
    if source.kind == SourceKind.SQLITE:
        path = sqlite_path_check(source.database)
        url = URL.create("sqlite", database=f"file:{path}?mode=ro", query={"uri": "true"})
        return Target(url, "sqlite")
    url = url_clean(source.url)
    if password is not None:
        url = url.set(password=password)
    return Target(url, url.get_backend_name())


def url_clean(text: str) -> URL:
    try:
        url = make_url(text.strip())
    except (exc.ArgumentError, ValueError):
        raise ValidationError(
            "That is not a SQLAlchemy URL; write it as dialect+driver://user@host:port/database, "
            "such as mssql+pyodbc://report@erp.example.com/sales?driver=ODBC+Driver+18+for+SQL+Server.",
            field="url",
        ) from None
    if url.password:
        raise ValidationError(
            "Leave the password out of the URL and type it in the Password field: it is stored "
            "encrypted there, and never shown again.",
            field="url",
        )
    if url.get_backend_name() == "sqlite":
        sqlite_path_check(url.database or "")
    return url


def engine_make(target: Target, *, timeout_seconds: int) -> Engine:
    """An engine of one connection per use, set up read-only with the time limit."""
    milliseconds = timeout_seconds * 1000
    arguments: dict[str, Any] = {}
    if target.dialect == "postgresql":
        arguments = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c default_transaction_read_only=on -c statement_timeout={milliseconds}",
        }
    elif target.dialect == "mysql":
        arguments = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # The server stops a statement at its time limit; the socket gives up a little
            # later, should the server itself hang.
            "read_timeout": timeout_seconds + 15,
            "write_timeout": timeout_seconds + 15,
            "init_command": "SET SESSION TRANSACTION READ ONLY",
        }
    engine = create_engine(target.url, poolclass=NullPool, connect_args=arguments)
    if target.dialect == "sqlite":
        event.listen(engine, "connect", _sqlite_connected(timeout_seconds))
    return engine


def _sqlite_connected(timeout_seconds: int) -> Any:
    def connected(dbapi_connection: Any, _record: Any) -> None:
        deadline = time.monotonic() + timeout_seconds
        dbapi_connection.execute("PRAGMA query_only = ON")
        dbapi_connection.set_progress_handler(
            lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS
        )

    return connected


def read_only_begin(connection: Connection, *, dialect: str, timeout_seconds: int) -> None:
    """Start the query's transaction read-only, with the time limit, where the database
    knows how (the first statement of the transaction)."""
    if dialect == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_seconds * 1000:d}")
    elif dialect == "mysql":
        if getattr(connection.dialect, "is_mariadb", False):
            connection.exec_driver_sql(f"SET SESSION max_statement_time = {timeout_seconds:d}")
        else:
            connection.exec_driver_sql(
                f"SET SESSION max_execution_time = {timeout_seconds * 1000:d}"
            )
        connection.exec_driver_sql("START TRANSACTION READ ONLY")


@dataclass(frozen=True)
class ConnectionCheck:
    is_ok: bool
    message: str
    elapsed: dt.timedelta


def source_test(source: DataSource) -> ConnectionCheck:
    """Connect, start a read-only transaction and ask for one row: the answer in words."""
    started = time.monotonic()
    try:
        target = source_target(source)
        engine = engine_make(target, timeout_seconds=CONNECT_TIMEOUT_SECONDS)
        with engine.connect() as connection:
            read_only_begin(
                connection, dialect=target.dialect, timeout_seconds=CONNECT_TIMEOUT_SECONDS
            )
            connection.exec_driver_sql("SELECT 1").all()
            version = _server_version(connection)
            connection.rollback()
        engine.dispose()
    except (ValidationError, ReportError) as error:
        return ConnectionCheck(False, error.message, _since(started))
    except Exception as error:  # every driver's own errors: said in words, never a crash
        return ConnectionCheck(False, database_error_explain(error), _since(started))
    return ConnectionCheck(
        True,
        f"Connected to {target.describe} ({version}) and read in a read-only transaction.",
        _since(started),
    )


def _server_version(connection: Connection) -> str:
    info = connection.dialect.server_version_info
    name = connection.dialect.name
    if getattr(connection.dialect, "is_mariadb", False):
        name = "MariaDB"
    return f"{name} {'.'.join(str(part) for part in info or ())}".strip()


def _since(started: float) -> dt.timedelta:
    return dt.timedelta(seconds=time.monotonic() - started)


def _first_line(error: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(error, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):  # PyMySQL: (number, message)
        text = f"{args[1]} ({args[0]})"
    else:
        text = str(error).strip()
    text = text.splitlines()[0] if text else type(error).__name__
    return text[:DATABASE_WORDS_MAX]


def _code(original: Any) -> str:
    """MySQL's error number (PyMySQL sets a generic SQLSTATE beside it), or psycopg's
    SQLSTATE, as text."""
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return str(args[0])
    return str(getattr(original, "sqlstate", None) or "")


# What a database's error means, by SQLSTATE (PostgreSQL) or error number (MySQL and
# MariaDB), in the words a person acts on.
_BY_CODE = {
    "57014": "The query ran past its time limit and was stopped",
    "1969": "The query ran past its time limit and was stopped",
    "3024": "The query ran past its time limit and was stopped",
    "25006": "The query tried to change data; reports only read",
    "1792": "The query tried to change data; reports only read",
    "42601": "The query has a syntax error",
    "1064": "The query has a syntax error",
    "42P01": "The query names a table the database does not have",
    "1146": "The query names a table the database does not have",
    "42703": "The query names a column the table does not have",
    "1054": "The query names a column the table does not have",
    "42501": "The database user may not read that",
    "1142": "The database user may not read that",
    "28P01": "The database refused the login: check the user name and password",
    "28000": "The database refused the login: check the user name and password",
    "1045": "The database refused the login: check the user name and password",
    "1698": "The database refused the login: check the user name and password",
    "3D000": "The database does not exist on that server: check its name",
    "1049": "The database does not exist on that server: check its name",
    "1044": "The database user may not use that database",
    "2003": "Could not connect to the database server: check the host and port, and that it runs",
    "2005": "The database server's host name is unknown: check it",
    "2013": "The connection to the database was lost during the query",
    "2006": "The connection to the database was lost during the query",
    "57P01": "The connection to the database was lost during the query (the server shut down)",
}
_BY_TEXT = (
    (
        "password authentication failed",
        "The database refused the login: check the user name and password",
    ),
    ("no password supplied", "The database refused the login: check the user name and password"),
    ('database "', "The database does not exist on that server: check its name"),
    ("interrupted", "The query ran past its time limit and was stopped"),
    ("readonly database", "The query tried to change data; reports only read"),
    ("read-only", "The query tried to change data; reports only read"),
    ("syntax error", "The query has a syntax error"),
    ("no such table", "The query names a table the database does not have"),
    ("no such column", "The query names a column the table does not have"),
    ("unable to open database file", "The SQLite file cannot be opened: check its path"),
    ("could not translate host name", "The database server's host name is unknown: check it"),
    (
        "connection refused",
        "Could not connect to the database server: check the host and port, and that it runs",
    ),
    ("timeout expired", "The database server did not answer in time: check the host and port"),
    ("server closed the connection", "The connection to the database was lost during the query"),
)


def database_error_explain(error: BaseException) -> str:
    """What went wrong, for people, with the database's own words after it."""
    if isinstance(error, exc.NoSuchModuleError):
        return (
            f"Postroom has no driver for this kind of database ({_first_line(error)}). Install "
            "the driver package into Postroom's Python environment, or choose PostgreSQL, "
            "MariaDB/MySQL or SQLite."
        )
    if isinstance(error, exc.StatementError) and not isinstance(error, exc.DBAPIError):
        original = error.orig if error.orig is not None else error
        if isinstance(original, exc.InvalidRequestError) or "bind parameter" in str(error):
            return (
                f"The query uses a parameter the report does not give ({_first_line(original)}). "
                "Add it under Parameters, or write a colon inside a text as \\:."
            )
    original = getattr(error, "orig", None) or error
    words = _first_line(original)
    summary = _BY_CODE.get(_code(original))
    if summary is None:
        lowered = words.lower()
        summary = next((said for key, said in _BY_TEXT if key in lowered), None)
    if summary is None:
        summary = "The database refused the query"
    return f"{summary}. The database said: {words}"
