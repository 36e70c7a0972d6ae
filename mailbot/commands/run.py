"""``mailbot run``: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import os

from mailbot.commands.common import (
    EX_OK,
    EX_UNAVAILABLE,
    CommandError,
    build_application,
    open_store,
)
from mailbot.config import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.ops.service import StartupError

    app = build_application(settings, open_store(settings))
    try:
        asyncio.run(app.run())
    except StartupError as exc:
        raise CommandError(str(exc), EX_UNAVAILABLE) from None
    except OSError as exc:
        cfg = settings.intake.smtp
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CommandError(
            f"cannot listen on {cfg.host}:{cfg.port}: {reason}", EX_UNAVAILABLE
        ) from None
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the daemon: listener, worker and sender")
    run.set_defaults(handler=cmd_run)
