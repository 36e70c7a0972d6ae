"""``mailbot tickets resolve REF``: mark a ticket resolved and stop its clocks."""

from __future__ import annotations

import argparse
import json

from mailbot.commands.common import EX_NOINPUT, EX_OK, CommandError, open_store, parse_ticket_ref
from mailbot.config import Settings
from mailbot.store.apply_service import resolve
from mailbot.store.db import utcnow
from mailbot.store.repo import ticket_by_number
from mailbot.views import ticket_summary


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    number = parse_ticket_ref(settings, args.ref)
    prefix = settings.mailbot.ticket_prefix
    now = utcnow()
    detail = "with mailbot tickets resolve" + (f": {args.note}" if args.note else "")
    with store.transaction() as session:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            raise CommandError(f"no such ticket: {args.ref}", EX_NOINPUT)
        changed = resolve(session, ticket, now, detail)
        summary = ticket_summary(ticket, 0, prefix, now)
    summary.pop("message_count")
    if args.json:
        print(json.dumps({**summary, "changed": changed}, indent=2, ensure_ascii=False))
    elif changed:
        print(f"{summary['ref']} resolved; its service-level clocks are stopped")
    else:
        print(f"{summary['ref']} was already {summary['status']}")
    return EX_OK


def register_action(actions: argparse._SubParsersAction) -> None:
    """Adds ``resolve`` to the ``tickets`` command's actions."""
    resolve_cmd = actions.add_parser("resolve", help="mark a ticket resolved (stops its clocks)")
    resolve_cmd.add_argument("ref", help="ticket reference, e.g. SUP-1001")
    resolve_cmd.add_argument("--note", default="", help="why, recorded on the ticket")
    resolve_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    resolve_cmd.set_defaults(handler=cmd_resolve)
