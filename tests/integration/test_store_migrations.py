"""Migrations on SQLite and PostgreSQL: they build the models' schema, and old ones are refused.

If ``test_migrations_build_the_models_schema`` fails after a change to
mailbot/store/models.py, regenerate the initial migration
(``python -m mailbot.store.migrations.autogen``) or, once released, add one
(``--new "what changed"``).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel
from support.daemon import base_config, merge, run_cli, write_config
from support.servers import free_port

from mailbot.store.db import Store, make_engine
from mailbot.store.models import ThreadEntry, Ticket
from mailbot.store.schema import (
    MIGRATIONS_DIR,
    SchemaError,
    code_revisions,
    context_options,
    ensure_schema,
    status,
    upgrade,
)

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 27, 12, 0)

LATER_MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = {head!r}


def upgrade():
    # Changing a column's nullability rebuilds the table on SQLite (batch "move and copy"),
    # with other tables' foreign keys pointing at it.
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("escalation_note", sa.Text(), nullable=True))
        batch.alter_column("requester", existing_type=sa.String(), nullable=False,
                           server_default="")


def downgrade():
    with op.batch_alter_table("ticket") as batch:
        batch.alter_column("requester", existing_type=sa.String(), nullable=True)
        batch.drop_column("escalation_note")
"""


def differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=context_options(conn.dialect.name))
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def sequences(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_sequence_names())
    finally:
        engine.dispose()


def test_migrations_build_the_models_schema(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    assert before.state == "empty"
    assert after.state == "current"
    assert after.current == code_revisions().heads
    assert differences(store_url) == [], (
        "models and migrations disagree: run `python -m mailbot.store.migrations.autogen`"
    )
    if store_url.startswith("postgresql"):
        assert "ticket_number_seq" in sequences(store_url)


def test_a_new_database_is_made_at_head_on_open_and_matches(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        found = status(store.engine)
        assert found.state == "current"
        before, after = upgrade(store.engine)  # nothing left to run
        assert before.current == after.current == code_revisions().heads
    finally:
        store.dispose()
    assert differences(store_url) == []


def _open_and_close(store_url: str) -> str:
    """One 'daemon' start: open (creating the schema if empty), report, close."""
    try:
        Store.open(store_url, busy_timeout=30.0).dispose()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        return f"{exc.__class__.__name__}: {exc}"
    return "ok"


def test_daemons_starting_together_on_an_empty_database_create_it_once(store_url: str) -> None:
    # Separate processes, as daemons are (threads also trip a CPython 3.11 bug when
    # Alembic compiles its scripts in several threads at once).
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(_open_and_close, [store_url] * 4))
    assert results == ["ok"] * 4
    assert differences(store_url) == []


def test_processes_opening_new_sqlite_databases_at_once_never_find_them_locked(
    tmp_path: Path,
) -> None:
    """Switching a new database to WAL needs it to itself, and SQLite answered "database
    is locked" at once to a process that tried while another did (about one open in a
    hundred here): each waits its turn now.  Many fresh databases, to meet that race."""
    context = multiprocessing.get_context("fork")
    results: list[str] = []
    for n in range(30):  # new processes each time: they start, and open, together
        url = f"sqlite:///{tmp_path / f'new{n}.db'}"
        with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
            results += pool.map(_open_and_close, [url] * 4)
    assert [r for r in results if r != "ok"] == []


def later_migrations(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    (head,) = code_revisions().heads
    (location / "versions" / "9001_later.py").write_text(LATER_MIGRATION.format(head=head))
    return location


def test_an_older_schema_is_refused_then_upgraded_with_its_data(
    store_url: str, tmp_path: Path
) -> None:
    store = Store.open(store_url)  # at today's head
    with store.transaction() as session:
        ticket = Ticket(number=1001, subject="Down", severity=1, requester="a@x.example",
                        created_at=NOW, updated_at=NOW)  # fmt: skip
        session.add(ticket)
        session.flush()
        session.add(
            ThreadEntry(
                ticket_id=ticket.id, direction="inbound", dedup_key="mid:a@x", created_at=NOW
            )  # fmt: skip
        )
    newer_code = later_migrations(tmp_path)
    try:
        with pytest.raises(SchemaError, match=r"needs 9001: run `mailbot db upgrade`"):
            ensure_schema(store.engine, location=newer_code)

        before, after = upgrade(store.engine, location=newer_code)
        assert (before.state, after.current) == ("behind", ("9001",))
        assert ensure_schema(store.engine, location=newer_code).state == "current"
        with store.engine.connect() as conn:
            columns = {c["name"]: c for c in inspect(conn).get_columns("ticket")}
            rows = conn.execute(text("SELECT number, requester FROM ticket")).all()
            entries = conn.execute(text("SELECT ticket_id FROM thread_entry")).scalars().all()
        assert "escalation_note" in columns
        assert columns["requester"]["nullable"] is False
        assert rows == [(1001, "a@x.example")]
        assert entries == [ticket.id]
        # ... and today's code now refuses the database, which is newer than it.
        with pytest.raises(SchemaError, match="unknown to this mailbot"):
            ensure_schema(store.engine)
    finally:
        store.dispose()


# ---------------------------------------------------------------- the command line


def config_for(tmp_path: Path, url: str) -> Path:
    config = merge(base_config(tmp_path, free_port(), None), {"database": {"url": url}})
    return write_config(tmp_path, config)


def test_db_upgrade_and_current_and_the_refusal(store_url: str, tmp_path: Path) -> None:
    config = config_for(tmp_path, store_url)

    fresh = run_cli(config, "db", "current")
    assert fresh.returncode == 0, fresh.stderr
    assert "empty" in fresh.stdout

    first = run_cli(config, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "upgraded from none to" in first.stdout
    again = run_cli(config, "db", "upgrade")
    assert (again.returncode, "nothing to do" in again.stdout) == (0, True)
    assert run_cli(config, "tickets", "list").returncode == 0

    engine = make_engine(store_url)  # a newer mailbot has migrated it
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    engine.dispose()
    for args in (("tickets", "list"), ("run",), ("db", "current")):
        refused = run_cli(config, *args)
        assert refused.returncode == 78, refused.stderr
        lines = (refused.stderr + refused.stdout).strip().splitlines()
        assert len(lines) == 1, lines
        assert "9001" in lines[0] and "upgrade mailbot" in lines[0]


def test_a_database_made_before_migrations_is_refused_until_stamped(
    store_url: str, tmp_path: Path
) -> None:
    engine = make_engine(store_url)  # what create_all made before there were migrations
    try:
        with engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
    finally:
        engine.dispose()
    config = config_for(tmp_path, store_url)

    refused = run_cli(config, "run")
    assert refused.returncode == 78
    assert refused.stderr.count("\n") == 1
    assert "no schema version" in refused.stderr and "mailbot db stamp head" in refused.stderr
    assert run_cli(config, "db", "upgrade").returncode == 78  # would fail on existing tables

    stamped = run_cli(config, "db", "stamp", "head")
    assert stamped.returncode == 0, stamped.stderr
    assert run_cli(config, "tickets", "list").returncode == 0
