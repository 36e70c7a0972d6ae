"""The dialect's own INSERT: the one that knows ``ON CONFLICT``."""

from __future__ import annotations

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
