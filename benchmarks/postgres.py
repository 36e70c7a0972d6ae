"""A throw-away PostgreSQL database for one benchmark run.

``MAILBOT_TEST_POSTGRES_URL`` names a server (and a database to connect to); the
benchmark creates its own ``mailbot_bench_<random>`` database there and drops it
afterwards, so it neither sees nor disturbs what tests keep in the named database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

ENV = "MAILBOT_TEST_POSTGRES_URL"


@contextmanager
def temporary_database(url: str) -> Iterator[str]:
    """Yields the URL of a fresh empty database on the server of ``url``."""
    base = make_url(url)
    name = f"mailbot_bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
