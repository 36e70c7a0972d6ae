"""``mailbot outbox list|retry``: what is waiting to go out, what failed, and a second chance.

``retry`` makes a failed (or waiting) row due now with a fresh retry budget; the
running daemon's sender delivers it within its poll interval, with the same
Message-ID as before.  A row already sent is never sent again.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mailbot.commands.common import EX_NOINPUT, EX_OK, EX_USAGE, CommandError, open_store
from mailbot.config import Settings
from mailbot.ops.queues import failed_outbox_ids, outbox_rows, requeue_outbox
from mailbot.store.db import utcnow
from mailbot.views import printable

STATUS_CHOICES = {
    "waiting": ("pending", "failed"),
    "pending": ("pending",),
    "failed": ("failed",),
    "sent": ("sent",),
    "all": ("pending", "failed", "sent"),
}


def format_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "outbox: nothing here"
    lines = [f"{'ID':>6}  {'KIND':<7} {'STATUS':<8} {'TRIES':>5}  {'TICKET':<12} {'TO':<30} INFO"]
    for r in rows:
        info = r["last_error"] or r["subject"] or ""
        if r["status"] == "pending" and r["next_attempt_at"]:
            info = f"next try {r['next_attempt_at'][:19]}; {info}"
        lines.append(
            f"{r['id']:>6}  {r['kind']:<7} {r['status']:<8} {r['attempts']:>5}  "
            f"{r['ticket'] or '-':<12} {printable(', '.join(r['recipients']))[:30]:<30} "
            f"{printable(info)[:90]}"
        )
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings).read() as session:
        rows = outbox_rows(session, STATUS_CHOICES[args.status], settings.mailbot.ticket_prefix)
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_rows(rows))
    return EX_OK


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    if args.all == (args.id is not None):
        raise CommandError("give an outbox ID or --all (not both)", EX_USAGE)
    store = open_store(settings)
    with store.transaction() as session:
        ids = failed_outbox_ids(session) if args.all else [args.id]
        results = [{"id": i, "result": requeue_outbox(session, i, utcnow())} for i in ids]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        explain = {
            "queued": "queued; the daemon sends it within its poll interval",
            "sent": "already sent; not sending it twice",
            "unknown": "no such outbox message",
        }
        lines = [f"outbox {r['id']}: {explain[r['result']]}" for r in results]
        print("\n".join(lines) or "outbox: no failed messages")
    if any(r["result"] == "unknown" for r in results):
        return EX_NOINPUT
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("outbox", help="outgoing messages: waiting, failed, sent")
    actions = parser.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="outbox messages (default: waiting and failed)")
    listing.add_argument("--status", choices=list(STATUS_CHOICES), default="waiting")
    listing.set_defaults(handler=cmd_list)
    retry = actions.add_parser("retry", help="make a failed message due again now")
    retry.add_argument("id", type=int, nargs="?", help="outbox ID (from outbox list)")
    retry.add_argument("--all", action="store_true", help="every failed message")
    retry.set_defaults(handler=cmd_retry)
    for sub in (listing, retry):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
