"""``mailbot run``: the daemon."""

from __future__ import annotations

import argparse
import asyncio

from mailbot.commands.common import EX_OK, EX_UNAVAILABLE, CommandError, open_store
from mailbot.config import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.app import Application

    app = Application(settings, store=open_store(settings))
    try:
        asyncio.run(app.run())
    except OSError as exc:
        cfg = settings.intake.smtp
        raise CommandError(
            f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}", EX_UNAVAILABLE
        ) from None
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the daemon: listener, worker and sender")
    run.set_defaults(handler=cmd_run)
