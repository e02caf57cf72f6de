"""Reports read real PostgreSQL, MariaDB and SQLite databases: values come back typed, a write
of any kind fails inside the read-only transaction and changes nothing, a slow query stops at
the time limit, the row cap truncates, and every failure is a ReportError in plain words."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from postroom.core.errors import ValidationError
from postroom.reports import services
from postroom.reports.execution import report_result
from postroom.reports.models import DataSource
from postroom.reports.sources import source_test
from postroom.reports.table import ReportError
from tests.reports.conftest import report_make, source_make
from tests.reports.databases import (
    ExternalDatabase,
    mariadb_rows,
    postgres_rows,
    sqlite_rows,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 6, 0, tzinfo=dt.UTC)
BERLIN = dt.timezone(dt.timedelta(hours=2))
KINDS = ["postgres", "mariadb", "sqlite"]


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest) -> ExternalDatabase:
    return request.getfixturevalue(f"{request.param}_source")


def direct(database: ExternalDatabase, sql: str) -> list[tuple[object, ...]]:
    reader = {"postgresql": postgres_rows, "mysql": mariadb_rows, "sqlite": sqlite_rows}
    return reader[database.kind](database, sql)


def run(source: DataSource, sql: str, **kwargs: object) -> object:
    report = report_make(source, sql=sql, parameters=kwargs.pop("parameters", []))
    return report_result(report, now=NOW, tz=BERLIN, **kwargs)  # type: ignore[arg-type]


def test_a_query_reads_typed_values_with_its_parameters_bound(database: ExternalDatabase) -> None:
    source = source_make(database)
    result = run(
        source,
        "SELECT id, region, amount, seller FROM sales WHERE day >= :period_start "
        "AND day < :period_end AND region <> :skip ORDER BY id",
        parameters=[
            {"name": "period", "type": "period", "value": "last month"},
            {"name": "skip", "type": "text", "value": "South"},
        ],
    )
    table = result.table  # type: ignore[attr-defined]
    assert table.columns == ["id", "region", "amount", "seller"]
    assert [row[0] for row in table.rows] == [1, 3]
    amount = table.rows[0][2]
    assert amount == (120.5 if database.kind == "sqlite" else Decimal("120.50"))
    assert table.rows[0][3] == "Ann Müller"
    assert result.resolved.period == "1–31 May 2026"  # type: ignore[attr-defined]


def test_a_text_parameter_is_bound_never_pasted(database: ExternalDatabase) -> None:
    source = source_make(database)
    result = run(
        source,
        "SELECT id FROM sales WHERE region = :region",
        parameters=[{"name": "region", "type": "text", "value": "x' OR '1'='1"}],
    )
    assert result.table.rows == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "write",
    [
        "DELETE FROM sales",
        "UPDATE sales SET amount = 0",
        "INSERT INTO audit_log VALUES (7)",
        "SELECT log_it()",
    ],
)
def test_a_write_fails_inside_the_read_only_transaction_and_changes_nothing(
    database: ExternalDatabase, write: str
) -> None:
    if database.kind == "sqlite" and "log_it" in write:
        write = "WITH gone AS (SELECT 1) DELETE FROM audit_log"  # SQLite has no stored functions
    source = source_make(database)
    with pytest.raises(ReportError) as raised:
        run(source, write)
    assert "tried to change data; reports only read" in raised.value.message
    assert direct(database, "SELECT COUNT(*) FROM sales")[0][0] == 4
    assert direct(database, "SELECT COUNT(*) FROM audit_log")[0][0] == 0
    assert direct(database, "SELECT MIN(amount) FROM sales")[0][0] != 0


def test_a_postgres_sequence_is_not_advanced(postgres_source: ExternalDatabase) -> None:
    with pytest.raises(ReportError, match="tried to change data"):
        run(source_make(postgres_source), "SELECT nextval('tickets')")
    assert postgres_rows(postgres_source, "SELECT last_value, is_called FROM tickets") == [
        (1, False)
    ]


SLOW = {
    "postgresql": "SELECT pg_sleep(10)",
    "mysql": "SELECT SLEEP(10)",
    # A recursive count that takes SQLite far longer than a second.
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
    "WHERE i < 500000000) SELECT MAX(i) FROM n",
}


def test_a_slow_query_is_stopped_by_the_time_limit(database: ExternalDatabase) -> None:
    source = source_make(database)
    started = time.monotonic()
    with pytest.raises(ReportError) as raised:
        run(source, SLOW[database.kind], timeout_seconds=1)
    assert time.monotonic() - started < 5
    assert "ran past its time limit and was stopped" in raised.value.message


def test_a_result_over_the_cap_is_truncated_and_says_so(database: ExternalDatabase) -> None:
    result = run(source_make(database), "SELECT id FROM sales ORDER BY id", max_rows=3)
    table = result.table  # type: ignore[attr-defined]
    assert [row[0] for row in table.rows] == [1, 2, 3]
    assert table.is_truncated


def test_a_syntax_error_is_said_in_words(database: ExternalDatabase) -> None:
    with pytest.raises(ReportError) as raised:
        run(source_make(database), "SELEKT * FROM sales")
    assert raised.value.message.startswith("The query has a syntax error. The database said:")


def test_a_second_statement_is_refused_before_connecting(database: ExternalDatabase) -> None:
    source = source_make(database)
    with pytest.raises(Exception, match="Write one statement"):
        report_make(source, sql="SELECT 1; COMMIT; DELETE FROM sales")
    assert direct(database, "SELECT COUNT(*) FROM sales")[0][0] == 4


def test_a_dropped_connection_is_said_in_words(postgres_source: ExternalDatabase) -> None:
    with pytest.raises(ReportError) as raised:
        run(source_make(postgres_source), "SELECT pg_terminate_backend(pg_backend_pid())")
    assert "connection to the database was lost" in raised.value.message


def test_a_mariadb_query_killed_midway_is_said_in_words(mariadb_source: ExternalDatabase) -> None:
    import pymysql

    report = report_make(source_make(mariadb_source), sql="SELECT SLEEP(8) AS marker_for_kill")
    failure: list[BaseException] = []

    def slow() -> None:
        try:
            report_result(report, now=NOW, tz=BERLIN)
        except BaseException as error:  # handed to the test's thread
            failure.append(error)

    thread = threading.Thread(target=slow)
    thread.start()
    killer = pymysql.connect(
        host=mariadb_source.host,
        port=mariadb_source.port,
        user=mariadb_source.user,
        password=mariadb_source.password,
        autocommit=True,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with killer.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE info LIKE "
                    "'%marker_for_kill%' AND info NOT LIKE '%processlist%'"
                )
                found = cursor.fetchone()
            if found:
                with killer.cursor() as cursor:
                    cursor.execute(f"KILL CONNECTION {int(found[0])}")
                break
            time.sleep(0.05)
    finally:
        killer.close()
    thread.join(10)
    assert failure and isinstance(failure[0], ReportError)
    assert "connection to the database was lost" in failure[0].message


def test_test_connection_says_what_it_reached(database: ExternalDatabase) -> None:
    check = source_test(source_make(database))
    assert check.is_ok, check.message
    assert check.message.startswith("Connected to ")
    assert "read-only transaction" in check.message


def test_test_connection_says_a_login_was_refused(mariadb_source: ExternalDatabase) -> None:
    source = source_make(mariadb_source)
    source.username = "nobody_here"
    check = source_test(source)
    assert not check.is_ok
    assert "refused the login: check the user name and password" in check.message


def test_test_connection_says_a_database_is_missing(postgres_source: ExternalDatabase) -> None:
    source = source_make(postgres_source)
    source.database = "no_such_database_here"
    check = source_test(source)
    assert check.message.startswith("The database does not exist on that server: check its name")


def test_test_connection_says_nothing_listens_on_the_port(
    postgres_source: ExternalDatabase,
) -> None:
    source = source_make(postgres_source)
    source.port = 9  # discard: nothing listens on it here
    check = source_test(source)
    assert not check.is_ok
    assert "Could not connect to the database server" in check.message


def test_a_sqlite_file_that_is_missing_is_said_in_words(sqlite_source: ExternalDatabase) -> None:
    source = source_make(sqlite_source)
    source.database = sqlite_source.name + ".missing"
    check = source_test(source)
    assert check.message.startswith("The SQLite file cannot be opened: check its path")


def url_source(url: str, *, password: str = "") -> DataSource:
    return services.source_save(
        actor=None,
        values=services.SourceInput(name="Other", kind="url", url=url, password=password),
    )


def test_any_sqlalchemy_url_reads_through_the_same_read_only_rules(
    postgres_source: ExternalDatabase,
) -> None:
    source = url_source(
        f"postgresql+psycopg://{postgres_source.user}@{postgres_source.host}:"
        f"{postgres_source.port}/{postgres_source.name}",
        password=postgres_source.password,
    )
    assert [row[0] for row in run(source, "SELECT id FROM sales ORDER BY id").table.rows] == [
        1,
        2,
        3,
        4,
    ]  # type: ignore[attr-defined]
    with pytest.raises(ReportError, match="tried to change data"):
        run(source, "DELETE FROM sales")


def test_a_url_with_its_password_in_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="Leave the password out of the URL"):
        url_source("postgresql+psycopg://report:secret@erp.example.com/erp")


def test_a_database_without_its_driver_is_said_in_words() -> None:
    check = source_test(url_source("nosuchdialect+nodriver://report@erp.example.com/erp"))
    assert not check.is_ok
    assert check.message.startswith("Postroom has no driver for this kind of database")


def test_postroom_s_own_data_directory_is_not_a_data_source() -> None:
    own = Path(settings.DATA_DIR) / "postroom.sqlite3"
    with pytest.raises(ValidationError, match="in Postroom's data directory"):
        services.source_save(
            actor=None,
            values=services.SourceInput(name="Own", kind="sqlite", database=str(own)),
        )
    with pytest.raises(ValidationError, match="in Postroom's data directory"):
        url_source(f"sqlite:///{own}")
