"""The dialect's own INSERT: the one that knows ``ON CONFLICT``."""

from __future__ import annotations

import functools
from typing import Any


def dialect_insert(dialect_name: str, table: Any) -> Any:
    """``INSERT`` on ``table`` for SQLite or PostgreSQL, with ``on_conflict_do_…()``.

    PostgreSQL's dialect module is imported only when it is used: it costs 2 MB in
    each process of a daemon that runs on SQLite.
    """
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


@functools.cache
def insert_ignoring_conflicts(dialect_name: str, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` on ``table``, built once per table.

    A statement built anew at each call costs SQLAlchemy its construction and its cache
    key, more than the execution itself on the worker's hot path; a built one keeps
    its key.  (A cache of immutable statements, not state: the same for every caller.)
    """
    return dialect_insert(dialect_name, table).on_conflict_do_nothing()


@functools.cache
def returning_id_insert(table: Any) -> Any:
    """``INSERT … RETURNING id`` on ``table``, built once (see above)."""
    return table.insert().returning(table.c.id)
