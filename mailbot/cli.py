"""Command line: ``mailbot [--config PATH] COMMAND``.

Exit codes follow sysexits: 0 ok, 64 usage, 65 bad data, 69 unavailable,
75 temporary failure, 78 bad configuration.  No tracebacks unless ``--debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import OperationalError

from mailbot.config import Settings, load_settings
from mailbot.errors import ConfigError, MailbotError
from mailbot.logs import setup_logging
from mailbot.pipeline.threading_rules import reference_pattern
from mailbot.store.db import Store
from mailbot.store.repo import ticket_by_number, tickets_with_counts
from mailbot.views import format_ticket_table, format_ticket_thread, ticket_detail, ticket_summary

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_CONFIG = 78

DEFAULT_CONFIG = "config.toml"


class CommandError(MailbotError):
    """A user-facing failure with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("MAILBOT_CONFIG") or DEFAULT_CONFIG


def _open_store(settings: Settings) -> Store:
    try:
        return Store.open(settings.database_url(), busy_timeout=settings.database.busy_timeout)
    except OperationalError as exc:
        raise CommandError(f"cannot open database: {exc.orig}", EX_UNAVAILABLE) from None


# ------------------------------------------------------------------ commands


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.app import Application

    app = Application(settings, store=_open_store(settings))
    try:
        asyncio.run(app.run())
    except OSError as exc:
        cfg = settings.intake.smtp
        raise CommandError(
            f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}", EX_UNAVAILABLE
        ) from None
    return EX_OK


def _parse_ref(settings: Settings, ref: str) -> int:
    match = reference_pattern(settings.mailbot.ticket_prefix).fullmatch(f"[{ref.strip('[]')}]")
    if match is None:
        if ref.isdigit():
            return int(ref)
        raise CommandError(
            f"not a ticket reference: {ref!r} (expected {settings.mailbot.ticket_prefix}-NNNN)",
            EX_USAGE,
        )
    return int(match.group(1))


def cmd_tickets_list(args: argparse.Namespace, settings: Settings) -> int:
    store = _open_store(settings)
    prefix = settings.mailbot.ticket_prefix
    with store.transaction() as session:
        rows = [ticket_summary(t, n, prefix) for t, n in tickets_with_counts(session)]
    print(
        json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_ticket_table(rows)
    )
    return EX_OK


def cmd_tickets_show(args: argparse.Namespace, settings: Settings) -> int:
    store = _open_store(settings)
    number = _parse_ref(settings, args.ref)
    with store.transaction() as session:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            raise CommandError(f"no such ticket: {args.ref}", EX_NOINPUT)
        detail = ticket_detail(session, ticket, settings.mailbot.ticket_prefix)
    print(
        json.dumps(detail, indent=2, ensure_ascii=False)
        if args.json
        else format_ticket_thread(detail)
    )
    return EX_OK


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailbot", description="Support-mailbox daemon.")
    parser.add_argument(
        "--config", "-c", help="config file (default: $MAILBOT_CONFIG or ./config.toml)"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon: listener, worker and sender")
    run.set_defaults(handler=cmd_run)

    tickets = commands.add_parser("tickets", help="look at tickets")
    ticket_commands = tickets.add_subparsers(
        dest="tickets_command", required=True, metavar="ACTION"
    )
    listing = ticket_commands.add_parser("list", help="all tickets")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_tickets_list)
    show = ticket_commands.add_parser("show", help="one ticket with its thread")
    show.add_argument("ref", help="ticket reference, e.g. SUP-1001")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_tickets_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(fmt=args.log_format, debug=args.debug)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        settings = load_settings(_config_path(args))
        return handler(args, settings)
    except ConfigError as exc:
        print(f"mailbot: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except CommandError as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EX_OK
    except Exception as exc:
        if args.debug:
            raise
        logging.getLogger("mailbot").debug("unhandled", exc_info=True)
        print(
            f"mailbot: error: {exc.__class__.__name__}: {exc} (use --debug for details)",
            file=sys.stderr,
        )
        return EX_TEMPFAIL
