"""Command line: ``mailbot [--config PATH] COMMAND``.

Exit codes follow sysexits: 0 ok, 64 usage, 65 bad data, 69 unavailable,
75 temporary failure, 78 bad configuration.  No tracebacks unless ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from mailbot.commands import REGISTRARS
from mailbot.commands.common import EX_CANTCREAT, EX_CONFIG, EX_SOFTWARE, CommandError
from mailbot.config import Settings, load_settings
from mailbot.errors import ConfigError
from mailbot.logs import setup_logging

DEFAULT_CONFIG = "config.toml"


def config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("MAILBOT_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailbot", description="Support-mailbox daemon.")
    parser.add_argument(
        "--config", "-c", help="config file (default: $MAILBOT_CONFIG, else ./config.toml)"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--log-file", help="append logs to this file (reopened on SIGHUP) instead of stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        setup_logging(fmt=args.log_format, debug=args.debug, file=args.log_file)
    except OSError as exc:
        print(f"mailbot: cannot open log file {args.log_file}: {exc.strerror}", file=sys.stderr)
        return getattr(args, "failure_code", None) or EX_CANTCREAT
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        settings = load_settings(config_path(args))
        return handler(args, settings)
    except ConfigError as exc:
        print(f"mailbot: configuration error: {exc}", file=sys.stderr)
        return getattr(args, "failure_code", None) or EX_CONFIG
    except CommandError as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        logging.getLogger("mailbot").debug("unhandled error", exc_info=True)
        print(
            f"mailbot: internal error: {exc.__class__.__name__}: {exc} (--debug shows details)",
            file=sys.stderr,
        )
        return getattr(args, "failure_code", None) or EX_SOFTWARE
