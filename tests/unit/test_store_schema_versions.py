"""The schema's version bookkeeping, without a database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from mailbot.store.schema import (
    MIGRATIONS_DIR,
    SchemaStatus,
    alembic_config,
    code_revisions,
)


def alembic_view(location: Path) -> tuple[set[str], set[str]]:
    config = alembic_config(None, location)  # type: ignore[arg-type]
    script = ScriptDirectory.from_config(config)
    return {s.revision for s in script.walk_revisions()}, set(script.get_heads())


def test_the_cheap_reading_of_versions_agrees_with_alembic() -> None:
    known, heads = alembic_view(MIGRATIONS_DIR)
    mine = code_revisions()
    assert set(mine.known) == known
    assert set(mine.heads) == heads
    assert len(heads) == 1, "the migrations have branched: merge them"


def test_a_later_migration_moves_the_head(tmp_path: Path) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    (head,) = code_revisions(location).heads
    (location / "versions" / "9999_later.py").write_text(
        f'revision: str = "9999"\ndown_revision: str | None = {head!r}\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    assert code_revisions(location).heads == ("9999",)
    assert alembic_view(location)[1] == {"9999"}


@pytest.mark.parametrize(
    ("current", "has_tables", "state", "says"),
    [
        ((), False, "empty", "mailbot db upgrade"),
        ((), True, "unversioned", "mailbot db stamp head"),
        (("0002",), True, "current", None),
        (("0001",), True, "behind", "mailbot db upgrade"),
        (("0009",), True, "unknown", "upgrade mailbot"),
    ],
)
def test_states_and_what_to_do(
    current: tuple[str, ...], has_tables: bool, state: str, says: str | None
) -> None:
    found = SchemaStatus(current, ("0002",), frozenset({"0001", "0002"}), has_tables)
    assert found.state == state
    problem = found.problem()
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem
        assert "\n" not in problem
    assert found.problem(empty_ok=True) == (None if state in ("empty", "current") else problem)
