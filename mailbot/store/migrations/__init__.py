"""Alembic migrations of the store (env.py, versions/), run by ``mailbot.store.schema``.

There is no alembic.ini: ``mailbot.store.schema.alembic_config`` builds the
configuration in code.  ``python -m mailbot.store.migrations.autogen`` regenerates the
initial migration from the models.
"""
