"""Hot statements run on SQLite's own cursor, compiled once, instead of through
SQLAlchemy's execution path.

On the worker's hot path a SQLite statement costs SQLAlchemy five to ten times what it
costs SQLite: a ticket's ``INSERT … RETURNING`` took about 50 µs in SQLAlchemy against
5 µs in the ``sqlite3`` module (measured here on an in-memory table), and a reply's
``UPDATE … RETURNING`` as much.  ``DirectStatement`` keeps what SQLAlchemy adds that
matters and drops the rest:

- the SQL is SQLAlchemy's own, compiled once for the connection's dialect, and every
  value goes through its column type's bind processor (a time is stored as the same
  text), every returned value through its result processor;
- the Connection's ``before_cursor_execute`` and ``after_cursor_execute`` listeners
  are told of each execution (once for an executemany), with ``context`` None;
- an error of the driver is raised as SQLAlchemy's (``IntegrityError`` for a unique
  key, ``OperationalError`` for a locked database), so callers handle it as before.

On any other database the statement runs through SQLAlchemy as usual: on PostgreSQL a
statement's cost is its round trip, not the library.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per positional parameter: its key in the caller's values (None: a value fixed in
    # the statement, ``fixed``), and its type's bind processor.
    keys: tuple[str | None, ...]
    fixed: tuple[Any, ...]
    bind: tuple[Processor, ...]
    # The columns it returns (a SELECT's, or RETURNING): keys and result processors.
    returned: tuple[str, ...]
    result: tuple[Processor, ...]


class DirectStatement:
    """A Core statement (no expanding ``IN``) run on the DB-API cursor on SQLite."""

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        # Compiled at first use, once per dialect class (every SQLite engine here is made
        # alike, by mailbot.store.db.make_engine).
        self._compiled: dict[type[Dialect], _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(type(dialect))
        if found is not None:
            return found
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=self._column_keys)
        keys, fixed, bind = [], [], []
        for name in compiled.positiontup:
            parameter = compiled.binds[name]
            if parameter.expanding:
                raise ValueError(f"expanding parameter {name!r}: not for DirectStatement")
            keys.append(parameter.key if parameter.required else None)
            fixed.append(None if parameter.required else parameter.effective_value)
            bind.append(parameter.type.dialect_impl(dialect).bind_processor(dialect))
        columns = list(getattr(self.statement, "exported_columns", ()))
        made = _Compiled(
            sql=compiled.string,
            keys=tuple(keys),
            fixed=tuple(fixed),
            bind=tuple(bind),
            returned=tuple(column.key for column in columns),
            result=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ),
        )
        self._compiled[type(dialect)] = made
        return made

    @staticmethod
    def _parameters(compiled: _Compiled, values: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for key, fixed, process in zip(compiled.keys, compiled.fixed, compiled.bind, strict=True):
            value = fixed if key is None else values[key]
            out.append(value if process is None or value is None else process(value))
        return tuple(out)

    def execute(self, connection: Connection, values: dict[str, Any]) -> DirectResult:
        """Run once with ``values``."""
        if connection.dialect.name != "sqlite":
            return DirectResult(connection.execute(self.statement, values), None)
        compiled = self._compile(connection.dialect)
        parameters = self._parameters(compiled, values)
        cursor = _run(connection, compiled.sql, parameters, many=False)
        return DirectResult(cursor, compiled)

    def executemany(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run once for each of ``rows`` (no RETURNING)."""
        if not rows:
            return
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, list(rows))
            return
        compiled = self._compile(connection.dialect)
        _run(connection, compiled.sql, [self._parameters(compiled, row) for row in rows], many=True)


class DirectResult:
    """What a DirectStatement returned: its cursor on SQLite, else SQLAlchemy's result."""

    def __init__(self, cursor: Any, compiled: _Compiled | None) -> None:
        self._cursor = cursor
        self._compiled = compiled

    @property
    def lastrowid(self) -> int:
        """The id of the row an INSERT added (SQLite only)."""
        assert self._compiled is not None, "lastrowid is SQLite's; use RETURNING elsewhere"
        return int(self._cursor.lastrowid)

    def first(self) -> dict[str, Any] | None:
        """The first row returned, by column key, its values processed (None: no row)."""
        if self._compiled is None:
            row = self._cursor.first()
            return None if row is None else dict(row._mapping)
        row = self._cursor.fetchone()
        self._cursor.close()
        if row is None:
            return None
        compiled = self._compiled
        return {
            key: value if process is None or value is None else process(value)
            for key, process, value in zip(compiled.returned, compiled.result, row, strict=True)
        }


def _run(connection: Connection, sql: str, parameters: Any, *, many: bool) -> sqlite3.Cursor:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, many)
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
    except sqlite3.Error as exc:
        # As SQLAlchemy raises it (its message shows the parameters shortened).
        raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error, ismulti=many) from exc
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, many)
    return cursor


@functools.cache
def direct(statement: ClauseElement, column_keys: tuple[str, ...] | None = None) -> DirectStatement:
    """``statement`` (built once) as a DirectStatement; an INSERT's ``column_keys`` are
    the columns its rows give.

    A cache of compiled forms of immutable statements, as ``mailbot.store.upsert``'s.
    """
    return DirectStatement(statement, column_keys)


def direct_insert(table: Table, column_keys: tuple[str, ...]) -> DirectStatement:
    """A plain INSERT into ``table`` of exactly these columns."""
    return direct(_plain_insert(table), column_keys)


@functools.cache
def _plain_insert(table: Table) -> ClauseElement:
    return table.insert()
