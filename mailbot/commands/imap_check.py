"""``mailbot imap-check``: log in to the configured IMAP server and look at the folder."""

from __future__ import annotations

import argparse

from mailbot.commands.common import EX_OK, EX_UNAVAILABLE, CommandError
from mailbot.config import Settings


def cmd_imap_check(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.intake.imap import ImapError, check_imap

    try:
        line = check_imap(settings)
    except ImapError as exc:
        raise CommandError(f"IMAP check failed: {exc}", EX_UNAVAILABLE) from None
    if not settings.intake.imap.enabled:
        line += " (note: intake.imap.enabled is false, so `mailbot run` will not read it)"
    print(line)
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "imap-check",
        help="log in to the [intake.imap] server and report the folder and message count",
    )
    check.set_defaults(handler=cmd_imap_check)
