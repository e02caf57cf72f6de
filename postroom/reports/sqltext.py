"""What an administrator's SQL may be: one statement (pure).

The read-only transaction is what stops writes (postroom.reports.execution). This check
adds one thing it cannot: PostgreSQL runs a text without parameters through its simple
protocol, which accepts several statements, and "COMMIT; SET ...; DELETE ..." would end the
read-only transaction before writing. So the text is split the way the databases read it
(quotes, quoted names, comments, PostgreSQL's $tag$ strings) and anything after the first
statement is refused.
"""

from __future__ import annotations

import re

from postroom.core.errors import ValidationError

MAX_SQL_CHARS = 100_000  # a report's query, not a migration script
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    """The index after the quoted text that starts at `start`: a doubled quote escapes
    one, and so does a backslash where the database reads it so (`backslash`)."""
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if char == "\\" and backslash:
            index += 2
            continue
        if char == quote:
            if sql.startswith(quote, index + 1):
                index += 2
                continue
            return index + 1
        index += 1
    return index


def _skip(sql: str, index: int, *, is_mysql: bool) -> int | None:
    """If a quoted text or a comment starts at `index`, the index after it."""
    char = sql[index]
    if char in "'\"`":
        # MySQL reads a backslash in any string as an escape; PostgreSQL only in E'...'.
        is_escape_string = char == "'" and index > 0 and sql[index - 1] in "eE"
        return _skip_quoted(sql, index, char, backslash=is_mysql or is_escape_string)
    if sql.startswith("--", index) or (char == "#" and is_mysql):
        end = sql.find("\n", index)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", index):
        end = sql.find("*/", index + 2)
        return len(sql) if end < 0 else end + 2
    if char == "$" and (tag := _DOLLAR_TAG.match(sql, index)):
        end = sql.find(tag.group(), tag.end())
        return len(sql) if end < 0 else end + len(tag.group())
    return None


def sql_clean(sql: str, *, is_mysql: bool = False) -> str:
    """The SQL without trailing semicolons and blanks; ValidationError for an empty text or
    more than one statement."""
    text = sql.strip()
    if len(text) > MAX_SQL_CHARS:
        raise ValidationError(
            f"The query is {len(text):,} characters long; at most {MAX_SQL_CHARS:,}.", field="sql"
        )
    index, end_of_statement = 0, None
    while index < len(text):
        after = _skip(text, index, is_mysql=is_mysql)
        if after is not None:
            index = after
            continue
        if text[index] == ";":
            end_of_statement = index if end_of_statement is None else end_of_statement
        elif not text[index].isspace() and end_of_statement is not None:
            raise ValidationError(
                "Write one statement: the query has more after a “;”. A report reads one "
                "result; join or union what you need into one SELECT.",
                field="sql",
            )
        index += 1
    text = text if end_of_statement is None else text[:end_of_statement].rstrip()
    if not text:
        raise ValidationError("Write the query: one SELECT statement.", field="sql")
    return text
