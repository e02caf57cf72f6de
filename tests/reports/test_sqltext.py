"""A report's SQL is one statement: what follows a ";" outside quotes and comments is refused."""

from __future__ import annotations

import pytest

from postroom.core.errors import ValidationError
from postroom.reports.sqltext import sql_clean


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ;  \n ;", "SELECT 1"),
        ("SELECT ';' AS semi", "SELECT ';' AS semi"),
        ('SELECT 1 AS "a;b"', 'SELECT 1 AS "a;b"'),
        ("SELECT 1 -- a comment; DELETE\n", "SELECT 1 -- a comment; DELETE"),
        ("SELECT /* ; */ 1", "SELECT /* ; */ 1"),
        ("SELECT $$;$$", "SELECT $$;$$"),
        ("SELECT $body$ ; $body$", "SELECT $body$ ; $body$"),
        ("SELECT 'it''s; fine'", "SELECT 'it''s; fine'"),
    ],
)
def test_one_statement_is_kept_without_its_trailing_semicolon(sql: str, expected: str) -> None:
    assert sql_clean(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DELETE FROM sales",
        "SELECT 1;COMMIT;SET default_transaction_read_only = off",
        "SELECT 'a'; SELECT 'b'",
        # PostgreSQL reads 'a\' as a whole text: the backslash escapes nothing there.
        "SELECT 'a\\'; DELETE FROM sales; --'",
    ],
)
def test_a_second_statement_is_refused(sql: str) -> None:
    with pytest.raises(ValidationError, match="Write one statement"):
        sql_clean(sql)


def test_mysql_reads_a_backslash_as_an_escape_and_hash_as_a_comment() -> None:
    assert sql_clean("SELECT 'a\\'; b' # x; y", is_mysql=True) == "SELECT 'a\\'; b' # x; y"
    with pytest.raises(ValidationError, match="Write one statement"):
        sql_clean("SELECT 'a\\'; b'; DELETE FROM t", is_mysql=True)


def test_an_empty_query_is_refused() -> None:
    with pytest.raises(ValidationError, match="Write the query"):
        sql_clean("  ;  ")
