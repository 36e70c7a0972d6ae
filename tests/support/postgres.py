"""A private PostgreSQL schema per test, and the SQLite/PostgreSQL ``store_url`` pair.

``MAILBOT_TEST_POSTGRES_URL`` names the server and database (CI:
``postgresql+psycopg://postgres@127.0.0.1:5432/test``).  Each test gets a schema of its
own, ``mailbot_t_<random>``, reached through ``?options=-csearch_path=<schema>`` in the
URL it is given (so the daemon, its commands and every connection of the pool see only
that schema), and the schema is dropped afterwards.  Without the variable the fixtures
skip with a one-line reason (``MAILBOT_REQUIRE_INTEGRATION=1`` turns that into a
failure).  The fixtures are imported into tests/conftest.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

ENV = "MAILBOT_TEST_POSTGRES_URL"
SKIP_REASON = f"{ENV} not set (a PostgreSQL server to test against)"


def server_url() -> str | None:
    return os.environ.get(ENV) or None


def schema_url(server: str, schema: str) -> str:
    """``server`` with every connection's search_path set to ``schema`` (password kept)."""
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def private_schema(server: str, prefix: str = "mailbot_t") -> Iterator[str]:
    """Create a fresh schema, yield a URL that uses it, drop it (and what is in it) after."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        try:
            yield schema_url(server, name)
        finally:
            with admin.connect() as conn:
                # Never wait forever for a session the test left in a transaction.
                conn.execute(text("SET lock_timeout = '60s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to an empty private schema on the test server; skips without one."""
    server = server_url()
    if server is None:
        pytest.skip(SKIP_REASON)
    with private_schema(server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an empty SQLite file and on an empty PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")
