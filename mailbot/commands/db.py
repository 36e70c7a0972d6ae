"""``mailbot db upgrade | current | stamp``: the schema's migrations.

Daemons and commands refuse a database whose schema is older (or newer) than the code,
with exit 78 and one line saying what to run; ``db upgrade`` is that command.  It is
safe with daemons still running on the old schema only when the migration is
additive; the README's "Scaling out" section describes the order.
"""

from __future__ import annotations

import argparse
import logging

from sqlalchemy.exc import OperationalError

from mailbot.commands.common import EX_CONFIG, EX_OK, EX_UNAVAILABLE, CommandError
from mailbot.config import Settings
from mailbot.store.db import Store
from mailbot.store.schema import SchemaError, SchemaStatus, stamp, status, upgrade


def _open(settings: Settings) -> Store:
    """The store without the schema check: these commands look at the schema themselves."""
    return Store.open(
        settings.database_url(), busy_timeout=settings.database.busy_timeout, check=False
    )


def _run(args: argparse.Namespace, settings: Settings, action):  # type: ignore[no-untyped-def]
    if not args.debug:  # Alembic's set-up chatter; our own line says what happened
        logging.getLogger("alembic").setLevel(logging.WARNING)
    store = _open(settings)
    try:
        return action(store)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()
        raise CommandError(
            f"cannot open database: {reason[0] if reason else exc}", EX_UNAVAILABLE
        ) from None
    except SchemaError as exc:
        raise CommandError(str(exc), EX_CONFIG) from None
    finally:
        store.dispose()


def _revision(found: SchemaStatus) -> str:
    return ", ".join(found.current) or "none"


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    before, after = _run(args, settings, lambda store: upgrade(store.engine, args.revision))
    if before.current == after.current:
        print(f"database: {after.describe()}; nothing to do")
    else:
        print(f"database: upgraded from {_revision(before)} to {_revision(after)}")
    return EX_OK


def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    found = _run(args, settings, lambda store: status(store.engine))
    print(f"database: {found.describe()}")
    return EX_OK if found.problem(empty_ok=True) is None else EX_CONFIG


def cmd_stamp(args: argparse.Namespace, settings: Settings) -> int:
    before, after = _run(args, settings, lambda store: stamp(store.engine, args.revision))
    print(f"database: revision {_revision(before)} → {_revision(after)} (nothing else changed)")
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="database schema: upgrade, current, stamp")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    up = actions.add_parser(
        "upgrade",
        help="run the migrations up to the code's schema (one transaction)",
        description="Bring the database's schema up to this version of mailbot. Safe to "
        "run again; several at once take turns.",
    )
    up.add_argument("revision", nargs="?", default="heads", help="target (default: heads)")
    up.set_defaults(handler=cmd_upgrade)

    current = actions.add_parser(
        "current",
        help="show the database's schema revision; exit 78 if it needs `db upgrade`",
    )
    current.set_defaults(handler=cmd_current)

    adopt = actions.add_parser(
        "stamp",
        help="record a revision without running migrations (a database made before them)",
    )
    adopt.add_argument("revision", help="e.g. head")
    adopt.set_defaults(handler=cmd_stamp)
