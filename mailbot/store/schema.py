"""The schema's version: create, check and upgrade the store with Alembic.

- A database with none of our tables is created at head when a daemon or command
  opens it: the tables straight from the models, and ``alembic_version`` stamped with
  the head revision (Alembic's recommended way to build a new database;
  tests/integration/test_store_migrations.py proves that the migrations build the same
  schema).  Two daemons starting at once on an empty PostgreSQL database take turns
  on a transaction-level advisory lock; on SQLite ``BEGIN IMMEDIATE`` serialises them.
- A database at an older revision is refused (``SchemaError``: run ``mailbot db
  upgrade``), and so is one at a revision this code does not know (a newer mailbot
  migrated it).
- ``upgrade`` runs the migrations in versions/ in one transaction, under that lock.

The check on every open stays cheap and does not import Alembic (a ``mailbot deliver``
process per message would pay for it): it reads ``alembic_version`` and compares it
with the ``revision``/``down_revision`` assignments of the files in versions/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from mailbot.errors import MailbotError
from mailbot.store import models  # noqa: F401  (registers the tables)
from mailbot.store.leader import lock_key

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
MIGRATION_LOCK = "migrations"
UPGRADE_HINT = "run `mailbot db upgrade`"

# Alembic's own definition of its version table (alembic.runtime.migration), written
# here so that creating a new database does not need Alembic at all.
_VERSION_TABLE = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


class SchemaError(MailbotError):
    """The database's schema does not fit this version of mailbot (one line, for users)."""


# ---------------------------------------------------------------- what the code knows


@dataclass(frozen=True)
class Revisions:
    known: frozenset[str]
    heads: tuple[str, ...]


def _assigned(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        value = getattr(node, "value", None)
        if value is not None and any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(value)
    return None


def code_revisions(location: Path = MIGRATIONS_DIR) -> Revisions:
    """The revisions in ``location``/versions and the heads among them (no Alembic import)."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in sorted((location / "versions").glob("*.py")):
        if path.name.startswith("__"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        revision = _assigned(tree, "revision")
        if not isinstance(revision, str):
            continue
        known.add(revision)
        down = _assigned(tree, "down_revision")
        parents.update([down] if isinstance(down, str) else list(down or ()))
    return Revisions(frozenset(known), tuple(sorted(known - parents)))


# ---------------------------------------------------------------- what the database has


@dataclass(frozen=True)
class SchemaStatus:
    current: tuple[str, ...]  # the revisions recorded in the database
    heads: tuple[str, ...]  # the code's
    known: frozenset[str]
    has_tables: bool  # any of the models' tables exist

    @property
    def state(self) -> str:
        """current | empty | unversioned | behind | unknown"""
        if not self.current:
            return "unversioned" if self.has_tables else "empty"
        if set(self.current) == set(self.heads):
            return "current"
        if any(rev not in self.known for rev in self.current):
            return "unknown"
        return "behind"

    def describe(self) -> str:
        at = ", ".join(self.current) or "none"
        head = ", ".join(self.heads) or "none"
        return {
            "current": f"schema at revision {at} (up to date)",
            "empty": f"empty (no mailbot tables); head revision is {head}",
            "unversioned": "mailbot tables without a schema version (created before migrations)",
            "behind": f"schema at revision {at}, this mailbot needs {head}: {UPGRADE_HINT}",
            "unknown": f"schema at revision {at}, unknown to this mailbot (head {head}): "
            "a newer mailbot migrated it; upgrade mailbot",
        }[self.state]

    def problem(self, *, empty_ok: bool = False) -> str | None:
        """Why the daemon must not use this database as it is, in one line; None if fine."""
        state = self.state
        if state == "current" or (state == "empty" and empty_ok):
            return None
        if state == "empty":
            return f"the database has no mailbot tables: {UPGRADE_HINT}"
        if state == "unversioned":
            return (
                "the database has mailbot tables but no schema version (made before "
                "migrations): if its schema is this version's, run `mailbot db stamp head`"
            )
        return "the database's " + self.describe()


def read_status(connection: Connection, location: Path = MIGRATIONS_DIR) -> SchemaStatus:
    names = set(inspect(connection).get_table_names())
    current: tuple[str, ...] = ()
    if VERSION_TABLE in names:
        query = text(f"SELECT version_num FROM {VERSION_TABLE}")
        current = tuple(sorted(connection.execute(query).scalars()))
    revisions = code_revisions(location)
    has_tables = bool(names & set(SQLModel.metadata.tables))
    return SchemaStatus(current, revisions.heads, revisions.known, has_tables)


def status(engine: Engine, location: Path = MIGRATIONS_DIR) -> SchemaStatus:
    """Read the schema status without taking a write lock."""
    from mailbot.store.db import READONLY_OPTION

    with engine.execution_options(**{READONLY_OPTION: True}).connect() as conn:
        return read_status(conn, location)


# ---------------------------------------------------------------- changing it


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    """A PRAGMA outside any transaction (inside one, ``foreign_keys`` is ignored)."""
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """One transaction that no other migration or creation runs beside.

    On SQLite foreign keys are off meanwhile, as its manual asks for table rebuilds
    (Alembic's batch mode), and checked before the commit.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _sqlite_pragma(conn, "foreign_keys = OFF")
        try:
            with conn.begin():  # SQLite: BEGIN IMMEDIATE (mailbot.store.db)
                if conn.dialect.name == "postgresql":
                    key = lock_key(conn, MIGRATION_LOCK)
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise SchemaError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                _sqlite_pragma(conn, "foreign_keys = ON")


def _require_current_schema(conn: Connection) -> None:
    """PostgreSQL with a search_path naming no existing schema: say so, not a traceback."""
    if conn.dialect.name != "postgresql":
        return
    if conn.execute(text("SELECT current_schema()")).scalar_one() is None:
        raise SchemaError(
            "no schema to create the tables in: the search_path names none that exists "
            "(create it, or fix the database URL)"
        )


def ensure_schema(
    engine: Engine, *, create: bool = True, location: Path = MIGRATIONS_DIR
) -> SchemaStatus:
    """Create an empty database at head (if ``create``); refuse any other mismatch."""
    found = status(engine, location)
    if found.state == "empty" and create:
        with migration_lock(engine) as conn:
            found = read_status(conn, location)  # another process may have made it meanwhile
            if found.state == "empty":
                _require_current_schema(conn)
                SQLModel.metadata.create_all(conn)
                _VERSION_TABLE.create(conn, checkfirst=True)
                for head in found.heads:
                    conn.execute(_VERSION_TABLE.insert().values(version_num=head))
                found = read_status(conn, location)
    problem = found.problem()
    if problem is not None:
        raise SchemaError(problem)
    return found


def alembic_config(connection: Connection, location: Path = MIGRATIONS_DIR) -> Any:
    """Alembic's configuration, built in code (there is no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def upgrade(
    engine: Engine, revision: str = "heads", location: Path = MIGRATIONS_DIR
) -> tuple[SchemaStatus, SchemaStatus]:
    """Run the migrations up to ``revision`` in one transaction; (before, after)."""
    from alembic import command

    with migration_lock(engine) as conn:
        before = read_status(conn, location)
        if before.state in ("unversioned", "unknown"):
            raise SchemaError(before.problem() or before.describe())
        if before.state == "empty":
            _require_current_schema(conn)
        command.upgrade(alembic_config(conn, location), revision)
        after = read_status(conn, location)
    return before, after


def stamp(
    engine: Engine, revision: str = "heads", location: Path = MIGRATIONS_DIR
) -> tuple[SchemaStatus, SchemaStatus]:
    """Record ``revision`` as the schema's without running anything (adopting a database)."""
    from alembic import command

    with migration_lock(engine) as conn:
        before = read_status(conn, location)
        command.stamp(alembic_config(conn, location), revision, purge=True)
        after = read_status(conn, location)
    return before, after


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """SQLModel's ``AutoString`` is a plain ``sa.String`` in a migration file."""
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()" if obj.length is None else f"sa.String(length={obj.length})"
    return False


def context_options(dialect_name: str, *, generating: bool = False) -> dict[str, Any]:
    """What env.py (and the comparison test) configure Alembic with."""
    from mailbot.store.migrations.sequences import GENERATING_OPTION

    return {
        "target_metadata": SQLModel.metadata,
        # SQLite cannot ALTER most things: Alembic's "move and copy" batch mode does.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
        GENERATING_OPTION: generating,
    }
