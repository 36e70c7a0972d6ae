"""``mailbot tickets list|show``: reading tickets."""

from __future__ import annotations

import argparse
import json

from mailbot.commands import attachment, resolve
from mailbot.commands.common import EX_NOINPUT, EX_OK, CommandError, open_store, parse_ticket_ref
from mailbot.config import Settings
from mailbot.store.repo import ticket_by_number, tickets_with_counts
from mailbot.views import format_ticket_table, format_ticket_thread, ticket_detail, ticket_summary


def _print(data: object, as_json: bool, render) -> None:  # type: ignore[no-untyped-def]
    print(json.dumps(data, indent=2, ensure_ascii=False) if as_json else render(data))


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    prefix = settings.mailbot.ticket_prefix
    with store.read() as session:
        rows = [ticket_summary(t, n, prefix) for t, n in tickets_with_counts(session)]
    _print(rows, args.json, format_ticket_table)
    return EX_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    number = parse_ticket_ref(settings, args.ref)
    with store.read() as session:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            raise CommandError(f"no such ticket: {args.ref}", EX_NOINPUT)
        detail = ticket_detail(session, ticket, settings.mailbot.ticket_prefix)
    _print(detail, args.json, lambda d: format_ticket_thread(d, full=args.full))
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    tickets = commands.add_parser("tickets", help="look at tickets")
    actions = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="all tickets")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="one ticket with its thread")
    show.add_argument("ref", help="ticket reference, e.g. SUP-1001")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument(
        "--full", action="store_true", help="whole texts (quoted history and signatures too)"
    )
    show.set_defaults(handler=cmd_show)
    resolve.register_action(actions)
    attachment.register_action(actions)
