"""Sequences in migrations: ``op.create_sequence`` / ``op.drop_sequence`` and autogenerate.

Alembic neither compares nor renders standalone sequences, and the ticket numbers come
from one (``ticket_number_seq``, PostgreSQL only).  This follows Alembic's cookbook
("Autogenerating Custom Operation Directives"): two operations, their renderers, and a
schema comparator.  On a database without sequences (SQLite) the operations do nothing,
and the comparator reports nothing, except while a migration is being generated
(``mailbot_generating``): then every sequence of the models that the migrations run so far
did not create is rendered, so a migration generated against SQLite still creates them
on PostgreSQL.

Importing this module registers everything (env.py and every migration file do).
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.operations import MigrateOperation, Operations
from sqlalchemy import Sequence, text
from sqlalchemy.schema import CreateSequence, DropSequence

GENERATING_OPTION = "mailbot_generating"
PRETENDED_INFO = "mailbot_pretended_sequences"


@Operations.register_operation("create_sequence")
class CreateSequenceOp(MigrateOperation):
    """CREATE SEQUENCE, where the database has sequences."""

    def __init__(self, sequence_name: str, *, start: int | None = None, schema: str | None = None):
        self.sequence_name = sequence_name
        self.start = start
        self.schema = schema

    @classmethod
    def create_sequence(
        cls,
        operations: Operations,
        sequence_name: str,
        *,
        start: int | None = None,
        schema: str | None = None,
    ) -> Any:
        return operations.invoke(cls(sequence_name, start=start, schema=schema))

    def reverse(self) -> DropSequenceOp:
        return DropSequenceOp(self.sequence_name, start=self.start, schema=self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_sequence", self.schema, self.sequence_name)


@Operations.register_operation("drop_sequence")
class DropSequenceOp(MigrateOperation):
    """DROP SEQUENCE, where the database has sequences."""

    def __init__(self, sequence_name: str, *, start: int | None = None, schema: str | None = None):
        self.sequence_name = sequence_name
        self.start = start
        self.schema = schema

    @classmethod
    def drop_sequence(
        cls, operations: Operations, sequence_name: str, *, schema: str | None = None
    ) -> Any:
        return operations.invoke(cls(sequence_name, schema=schema))

    def reverse(self) -> CreateSequenceOp:
        return CreateSequenceOp(self.sequence_name, start=self.start, schema=self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("remove_sequence", self.schema, self.sequence_name)


def _has_sequences(operations: Operations) -> bool:
    return bool(operations.get_bind().dialect.supports_sequences)


def _pretended(operations: Operations) -> set[tuple[str | None, str]]:
    """Sequences the migrations "created" on this connection to a database without any.

    Kept on the connection so that generating a later migration against a scratch SQLite
    database upgraded to head knows which sequences exist already.
    """
    return operations.get_bind().info.setdefault(PRETENDED_INFO, set())


@Operations.implementation_for(CreateSequenceOp)
def _create_sequence(operations: Operations, operation: CreateSequenceOp) -> None:
    if _has_sequences(operations):
        sequence = Sequence(operation.sequence_name, start=operation.start, schema=operation.schema)
        operations.execute(CreateSequence(sequence))
    else:
        _pretended(operations).add((operation.schema, operation.sequence_name))


@Operations.implementation_for(DropSequenceOp)
def _drop_sequence(operations: Operations, operation: DropSequenceOp) -> None:
    if _has_sequences(operations):
        operations.execute(DropSequence(Sequence(operation.sequence_name, schema=operation.schema)))
    else:
        _pretended(operations).discard((operation.schema, operation.sequence_name))


def _render_args(op: CreateSequenceOp | DropSequenceOp, with_start: bool) -> str:
    args = [repr(op.sequence_name)]
    if with_start and op.start is not None:
        args.append(f"start={op.start!r}")
    if op.schema is not None:
        args.append(f"schema={op.schema!r}")
    return ", ".join(args)


@renderers.dispatch_for(CreateSequenceOp)
def _render_create_sequence(autogen_context: Any, op: CreateSequenceOp) -> str:
    return f"op.create_sequence({_render_args(op, with_start=True)})"


@renderers.dispatch_for(DropSequenceOp)
def _render_drop_sequence(autogen_context: Any, op: DropSequenceOp) -> str:
    return f"op.drop_sequence({_render_args(op, with_start=False)})"


def _model_sequences(metadata: Any) -> dict[tuple[str | None, str], Sequence]:
    found: dict[tuple[str | None, str], Sequence] = {}
    for meta in metadata if isinstance(metadata, (list, tuple)) else [metadata]:
        for sequence in meta._sequences.values():  # sequences registered with MetaData
            found[(sequence.schema, sequence.name)] = sequence
    return found


# Sequences that belong to a column (SERIAL, IDENTITY) come and go with their tables.
_FREE_SEQUENCES = text(
    """
    SELECT c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND n.nspname = coalesce(:schema, current_schema())
      AND NOT EXISTS (
        SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
      )
    """
)


@comparators.dispatch_for("schema")
def compare_sequences(autogen_context: Any, upgrade_ops: Any, schemas: Any) -> None:
    """Sequences of the models missing from the database, and free ones it has too many of."""
    metadata = autogen_context.metadata
    if metadata is None:
        return
    wanted = _model_sequences(metadata)
    dialect = autogen_context.dialect
    if not dialect.supports_sequences:
        if not autogen_context.opts.get(GENERATING_OPTION):
            return
        existing = set(autogen_context.connection.info.get(PRETENDED_INFO, set()))
    elif dialect.name == "postgresql":
        connection = autogen_context.connection
        existing = {
            (schema, name)
            for schema in schemas
            for name in connection.execute(_FREE_SEQUENCES, {"schema": schema}).scalars()
        }
    else:  # another database with sequences: compare names only
        inspector = autogen_context.inspector
        existing = {
            (schema, name) for schema in schemas for name in inspector.get_sequence_names(schema)
        }
    for key in sorted(set(wanted) - existing, key=lambda k: (k[0] or "", k[1])):
        sequence = wanted[key]
        upgrade_ops.ops.append(
            CreateSequenceOp(sequence.name, start=sequence.start, schema=sequence.schema)
        )
    for schema, name in sorted(existing - set(wanted), key=lambda k: (k[0] or "", k[1])):
        upgrade_ops.ops.append(DropSequenceOp(name, schema=schema))
