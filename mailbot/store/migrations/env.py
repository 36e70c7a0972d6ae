"""Alembic environment, run by ``mailbot.store.schema`` with a connection in hand.

Never run through an alembic.ini: the caller puts an open connection (already in its
transaction, holding the migration lock) in ``config.attributes["connection"]``, so the
whole upgrade commits or rolls back as one on PostgreSQL and on SQLite alike.
"""

from __future__ import annotations

from alembic import context

from mailbot.store.schema import context_options

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "mailbot migrations run through `mailbot db upgrade` (mailbot.store.schema), "
        "not the alembic command line"
    )

context.configure(
    connection=connection,
    **context_options(
        connection.dialect.name, generating=bool(config.attributes.get("generating"))
    ),
)
with context.begin_transaction():
    context.run_migrations()
