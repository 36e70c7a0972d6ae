"""``mailbot quarantine list|show|retry|discard``: messages the pipeline could not handle.

``retry`` runs the message through the pipeline again, here and now, so the operator
sees the result; it leaves quarantine only if that succeeds.  ``discard`` marks it
discarded and keeps the raw bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from mailbot.commands.common import (
    EX_NOINPUT,
    EX_OK,
    EX_TEMPFAIL,
    EX_USAGE,
    CommandError,
    build_application,
    open_store,
)
from mailbot.config import Settings
from mailbot.ops.queues import (
    discard_quarantined,
    inbound_detail,
    inbound_raw,
    quarantined,
    quarantined_ids,
    requeue_quarantined,
)
from mailbot.store.db import Store, utcnow
from mailbot.views import printable

EX_STILL_QUARANTINED = 1


def _emit(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if as_json else text)


def format_list(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "quarantine is empty"
    lines = [f"{'ID':>6}  {'RECEIVED':<20} {'FROM':<30} {'SUBJECT':<36} REASON"]
    for e in entries:
        lines.append(
            f"{e['id']:>6}  {(e['received_at'] or '')[:19]:<20} "
            f"{printable(e['from'] or e['mail_from'] or '-')[:30]:<30} "
            f"{printable(e['subject'] or '-')[:36]:<36} {printable(e['reason'])[:80]}"
        )
    return "\n".join(lines)


def format_detail(e: dict[str, Any]) -> str:
    lines = [
        f"message {e['id']} · {e['status']} · via {e['source']} · received {e['received_at']}",
        f"envelope: from <{printable(e['mail_from'])}> to {', '.join(e['rcpt_to'])}",
        f"size {e['size']} bytes · attempts {e['attempts']} · sha256 {e['raw_sha256']}",
    ]
    for name, value in e["headers"].items():
        lines.append(f"{name}: {printable(value)}")
    lines += ["", "reason:", printable(e["traceback"], multiline=True).rstrip()]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings).transaction() as session:
        entries = quarantined(session)
    _emit(entries, args.json, format_list(entries))
    return EX_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings).transaction() as session:
        detail = inbound_detail(session, args.id)
        raw = inbound_raw(session, args.id) if args.raw else None
    if detail is None:
        raise CommandError(f"no such message: {args.id}", EX_NOINPUT)
    if raw is not None:
        sys.stdout.buffer.write(raw)
        return EX_OK
    _emit(detail, args.json, format_detail(detail))
    return EX_OK


def retry(settings: Settings, store: Store, ids: list[int]) -> list[dict[str, Any]]:
    """Requeue each message (leased to us) and process it in this process."""
    app = build_application(settings, store)
    results = []
    for inbound_id in ids:
        lease = utcnow() + timedelta(seconds=settings.worker.lease_seconds)
        with store.transaction() as session:
            requeued = requeue_quarantined(session, inbound_id, lease)
        if not requeued:
            results.append(
                {
                    "id": inbound_id,
                    "outcome": "not-quarantined",
                    "ticket": None,
                    "detail": "not in quarantine (unknown, retried or discarded)",
                }
            )
            continue
        outcome = app.worker.process_one(inbound_id)
        app.ops.observe_outcomes([outcome])
        detail = outcome.detail
        if outcome.outcome == "quarantined":
            detail = detail.strip().splitlines()[-1] if detail.strip() else "unknown"
        results.append(
            {
                "id": inbound_id,
                "outcome": outcome.outcome,
                "ticket": outcome.ticket_ref,
                "detail": detail,
            }
        )
    return results


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    if args.all == (args.id is not None):
        raise CommandError("give a message ID or --all (not both)", EX_USAGE)
    store = open_store(settings)
    with store.transaction() as session:
        ids = quarantined_ids(session) if args.all else [args.id]
    results = retry(settings, store, ids)
    text = []
    for r in results:
        ticket = f" {r['ticket']}" if r["ticket"] else ""
        text.append(f"message {r['id']}: {r['outcome']}{ticket}: {printable(r['detail'])}")
    _emit(results, args.json, "\n".join(text) or "quarantine is empty")
    if any(r["outcome"] == "retry" for r in results):
        return EX_TEMPFAIL
    if any(r["outcome"] in ("quarantined", "not-quarantined") for r in results):
        return EX_STILL_QUARANTINED
    return EX_OK


def cmd_discard(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings).transaction() as session:
        done = discard_quarantined(session, args.id, utcnow())
    if not done:
        raise CommandError(f"message {args.id} is not in quarantine", EX_NOINPUT)
    _emit(
        {"id": args.id, "status": "discarded"},
        args.json,
        f"message {args.id}: discarded (raw bytes kept; see: quarantine show {args.id})",
    )
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("quarantine", help="messages the pipeline could not handle")
    actions = parser.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="quarantined messages")
    listing.set_defaults(handler=cmd_list)

    show = actions.add_parser("show", help="one message: envelope, headers, full reason")
    show.add_argument("id", type=int, help="message ID (from quarantine list)")
    show.add_argument("--raw", action="store_true", help="write the raw message to stdout")
    show.set_defaults(handler=cmd_show)

    retry_cmd = actions.add_parser(
        "retry", help="run through the pipeline again now; leaves quarantine only on success"
    )
    retry_cmd.add_argument("id", type=int, nargs="?", help="message ID")
    retry_cmd.add_argument("--all", action="store_true", help="every quarantined message")
    retry_cmd.set_defaults(handler=cmd_retry)

    discard = actions.add_parser("discard", help="give up on a message (its bytes are kept)")
    discard.add_argument("id", type=int, help="message ID")
    discard.set_defaults(handler=cmd_discard)

    for sub in (listing, show, retry_cmd, discard):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
