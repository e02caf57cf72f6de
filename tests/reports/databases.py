"""Real external databases for the report tests: PostgreSQL and MariaDB on 127.0.0.1 (both run
on the developers' machines and in CI) and SQLite files.

Each test session makes its own database on each server (named for the xdist worker) with a
`sales` table, a sequence or an audit table to write to, and a function with a side effect,
and drops it at the end. The connection Postroom is given is a superuser's (postgres, root):
what stops a write in these tests is the read-only transaction, not a missing grant. A server
that does not answer fails the tests that need it, with what to start: nothing is skipped.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest

# The servers `make test` checks (scripts/check-postgres, scripts/check-mariadb).
_PG = urlsplit(os.environ.get("POSTROOM_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/"))
_MARIADB = urlsplit(os.environ.get("POSTROOM_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/"))
PG_HOST, PG_PORT, PG_USER = (
    _PG.hostname or "127.0.0.1",
    _PG.port or 5432,
    _PG.username or "postgres",
)
PG_PASSWORD = _PG.password or None
MARIADB_HOST, MARIADB_PORT = _MARIADB.hostname or "127.0.0.1", _MARIADB.port or 3306
MARIADB_USER, MARIADB_PASSWORD = _MARIADB.username or "root", _MARIADB.password or ""

SALES = [
    (1, dt.date(2026, 5, 1), "North", Decimal("120.50"), "Ann Müller"),
    (2, dt.date(2026, 5, 2), "South", Decimal("80.00"), "Bob"),
    (3, dt.date(2026, 5, 31), "North", Decimal("42.25"), "=cmd|' /C calc'!A0"),
    (4, dt.date(2026, 6, 1), "East", Decimal("10.00"), "Dora"),
]


@dataclass(frozen=True)
class ExternalDatabase:
    kind: str  # a SourceKind value
    host: str
    port: int
    user: str
    name: str  # the database's name, or the SQLite file's path
    password: str = ""


def _database_name() -> str:
    # The process id too: two test runs on one machine (a developer's and CI's) share the
    # database servers, and one dropping the other's database failed its report tests.
    return f"postroom_reports_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


def _fail(what: str, error: Exception, advice: str) -> None:
    pytest.fail(
        f"{what} is needed by the report tests and did not answer ({error}). {advice}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_source() -> Iterator[ExternalDatabase]:
    name = _database_name()
    try:
        admin = psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_USER,
            password=PG_PASSWORD,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.Error as error:
        _fail(
            "PostgreSQL on 127.0.0.1:5432",
            error,
            "Start it with trust auth for 'postgres' (apt-get install postgresql).",
        )
        raise
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=name, autocommit=True
    ) as connection:
        connection.execute(
            "CREATE TABLE sales (id int PRIMARY KEY, day date, region text, amount numeric(10,2),"
            " seller text, created_at timestamptz DEFAULT '2026-05-01 08:00+00', photo bytea)"
        )
        for row in SALES:
            connection.execute(
                "INSERT INTO sales (id, day, region, amount, seller) VALUES (%s,%s,%s,%s,%s)", row
            )
        connection.execute("CREATE TABLE audit_log (n int)")
        connection.execute("CREATE SEQUENCE tickets")
        connection.execute(
            "CREATE FUNCTION log_it() RETURNS int LANGUAGE sql AS "
            "$$ INSERT INTO audit_log VALUES (1) RETURNING 1 $$"
        )
    yield ExternalDatabase("postgresql", PG_HOST, PG_PORT, PG_USER, name, PG_PASSWORD or "")
    with psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        password=PG_PASSWORD,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_rows(source: ExternalDatabase, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(
        host=source.host,
        port=source.port,
        user=source.user,
        password=PG_PASSWORD,
        dbname=source.name,
    ) as connection:
        return connection.execute(sql).fetchall()


def _mariadb(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password=MARIADB_PASSWORD,
        database=database,
        autocommit=True,
        connect_timeout=5,
    )


@pytest.fixture(scope="session")
def mariadb_source() -> Iterator[ExternalDatabase]:
    name = _database_name()
    try:
        admin = _mariadb()
    except pymysql.MySQLError as error:
        _fail(
            "MariaDB on 127.0.0.1:3306",
            error,
            "Start it with root allowed without a password (apt-get install mariadb-server).",
        )
        raise
    with admin, admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cursor.execute(f"USE `{name}`")
        cursor.execute(
            "CREATE TABLE sales (id int PRIMARY KEY, day date, region varchar(20), amount "
            "decimal(10,2), seller varchar(100), created_at datetime DEFAULT '2026-05-01 08:00', "
            "photo blob)"
        )
        cursor.executemany(
            "INSERT INTO sales (id, day, region, amount, seller) VALUES (%s,%s,%s,%s,%s)", SALES
        )
        cursor.execute("CREATE TABLE audit_log (n int)")
        cursor.execute(
            "CREATE FUNCTION log_it() RETURNS int MODIFIES SQL DATA "
            "BEGIN INSERT INTO audit_log VALUES (1); RETURN 1; END"
        )
    yield ExternalDatabase(
        "mysql", MARIADB_HOST, MARIADB_PORT, MARIADB_USER, name, MARIADB_PASSWORD
    )
    with _mariadb() as admin, admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def mariadb_rows(source: ExternalDatabase, sql: str) -> list[tuple[object, ...]]:
    with _mariadb(source.name) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


@pytest.fixture(scope="session")
def sqlite_source(tmp_path_factory: pytest.TempPathFactory) -> ExternalDatabase:
    path = Path(tmp_path_factory.mktemp("sqlite-source")) / "erp.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE sales (id integer PRIMARY KEY, day text, region text, amount real, "
            "seller text, created_at text DEFAULT '2026-05-01 08:00:00', photo blob)"
        )
        connection.executemany(
            "INSERT INTO sales (id, day, region, amount, seller) VALUES (?,?,?,?,?)",
            [(i, d.isoformat(), r, float(a), s) for i, d, r, a, s in SALES],
        )
        connection.execute("CREATE TABLE audit_log (n int)")
    connection.close()
    return ExternalDatabase("sqlite", "", 0, "", str(path))


def sqlite_rows(source: ExternalDatabase, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(source.name)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()
