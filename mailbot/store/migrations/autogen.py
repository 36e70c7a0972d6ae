"""Regenerate the initial migration from the models: ``python -m mailbot.store.migrations.autogen``.

While the schema has never been released, the first migration is simply regenerated
whenever the models change: this deletes ``versions/0001_*.py`` and autogenerates it
again against a scratch, empty SQLite database (no server needed; the sequence of
ticket numbers is rendered anyway, and created on PostgreSQL only).  It refuses when
later migrations exist: from then on, add a migration with ``--new "message"`` (the
same autogeneration against a scratch database upgraded to the current head), and
review it before committing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine

from mailbot.store.schema import MIGRATIONS_DIR, alembic_config, code_revisions

INITIAL = "0001"
VERSIONS = MIGRATIONS_DIR / "versions"


def _generate(message: str, rev_id: str, *, upgrade_first: bool) -> Path:
    from alembic import command

    before = set(VERSIONS.glob("*.py"))
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            with engine.begin() as conn:
                config = alembic_config(conn)
                if upgrade_first:
                    command.upgrade(config, "heads")
                config.attributes["generating"] = True
                command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    created = sorted(set(VERSIONS.glob("*.py")) - before)
    if len(created) != 1:
        raise SystemExit(f"expected one new file in {VERSIONS}, found {created}")
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if Path(ruff).exists():
        for args in (["format", "--quiet"], ["check", "--fix", "--quiet"]):
            subprocess.run([ruff, *args, str(created[0])], check=False)
    return created[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mailbot.store.migrations.autogen", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--new",
        metavar="MESSAGE",
        help="add a migration after the current head instead of regenerating the initial one",
    )
    args = parser.parse_args(argv)
    revisions = code_revisions()
    if args.new:
        number = max((int(r) for r in revisions.known if r.isdigit()), default=0) + 1
        path = _generate(args.new, f"{number:04d}", upgrade_first=True)
    else:
        later = sorted(revisions.known - {INITIAL})
        if later:
            print(
                f"versions/ has later migrations ({', '.join(later)}): the initial one can no "
                "longer be regenerated; use --new MESSAGE",
                file=sys.stderr,
            )
            return 1
        for old in VERSIONS.glob(f"{INITIAL}_*.py"):
            old.unlink()
        path = _generate("initial schema", INITIAL, upgrade_first=False)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
