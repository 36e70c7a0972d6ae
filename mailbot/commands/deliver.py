"""``mailbot deliver``: one message on stdin into the inbound queue (MTA pipe delivery).

For Postfix ``pipe``, procmail, fetchmail/getmail.  Like the SMTP listener it only
stores the raw bytes; the daemon's worker picks the row up within its poll interval.
Exit codes are what MTAs understand (sysexits): 0 once committed, 75 (EX_TEMPFAIL)
when the store is locked or unreachable, so the MTA keeps the message and retries,
65 (EX_DATAERR) when the message can never be accepted (too big, empty).
"""

from __future__ import annotations

import argparse
import re
import sys
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import BinaryIO

from mailbot.commands.common import EX_DATAERR, EX_OK, EX_TEMPFAIL, CommandError
from mailbot.config import Settings
from mailbot.store.db import Store, utcnow
from mailbot.store.repo import enqueue

_HEADER_END = re.compile(rb"\r?\n\r?\n")

SOURCE = "deliver"


def read_limited(stream: BinaryIO, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse (65) anything larger without reading it all."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise CommandError(
            f"message larger than the limit of {limit} bytes (intake.smtp.max_message_size)",
            EX_DATAERR,
        )
    if not data.strip():
        raise CommandError("empty message on standard input", EX_DATAERR)
    return data


def split_postmark(raw: bytes) -> tuple[bytes, str | None]:
    """Drop an mbox ``From sender date`` first line (procmail, fetchmail's mda) if present.

    Returns the message and the sender it names, used when ``--from`` is not given.
    """
    if not raw.startswith(b"From "):
        return raw, None
    first, _, rest = raw.partition(b"\n")
    words = first.split()
    sender = words[1].decode("ascii", "replace") if len(words) > 1 else None
    return rest, ("" if sender == "MAILER-DAEMON" else sender)


def _header_block(raw: bytes) -> bytes:
    """The header section (up to the first empty line): the body need not be read."""
    end = _HEADER_END.search(raw)
    return raw[: end.end()] if end else raw


def guess_sender(raw: bytes) -> str:
    """The envelope sender when the MTA did not pass one: Return-Path, else From."""
    headers = BytesHeaderParser().parsebytes(_header_block(raw))
    return_path = headers.get("Return-Path")
    return sender_from(
        None if return_path is None else str(return_path), str(headers.get("From", ""))
    )


def sender_from(return_path: str | None, from_header: str) -> str:
    """The envelope sender a message's Return-Path gives, else its From address.

    An empty string means the null sender (a bounce), which the pipeline never answers,
    so "unknown" must not become "": the From address is the better guess.
    """
    if return_path is not None:
        return parseaddr(return_path)[1]
    return parseaddr(from_header)[1]


def _one_line(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {reason[0] if reason else ''}"


def cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    raw, postmark_sender = split_postmark(
        read_limited(sys.stdin.buffer, settings.intake.smtp.max_message_size)
    )
    recipients = args.to or [settings.mailbot.support_address]
    sender = args.sender if args.sender is not None else postmark_sender
    if sender is None:
        sender = guess_sender(raw)
    if sender.upper() == "MAILER-DAEMON":  # Postfix's default stand-in for the null sender
        sender = ""
    try:
        store = Store.open(settings.database_url(), busy_timeout=settings.database.busy_timeout)
        try:
            with store.transaction() as session:
                inbound_id = enqueue(
                    session,
                    source=SOURCE,
                    raw=raw,
                    now=utcnow(),
                    mail_from=sender,
                    rcpt_to=recipients,
                )
        finally:
            store.dispose()
    except Exception as exc:  # locked, unreachable, read-only, disk full: the MTA retries
        raise CommandError(
            f"could not store the message, try again later ({_one_line(exc)})", EX_TEMPFAIL
        ) from None
    if args.verbose:
        print(f"queued as {inbound_id}", file=sys.stderr)
    return EX_OK


def register(commands: argparse._SubParsersAction) -> None:
    deliver = commands.add_parser(
        "deliver",
        help="store one message from standard input (MTA pipe delivery)",
        description="Store one RFC 5322 message read from standard input in the inbound "
        "queue. Exit 0 once stored, 75 on a temporary failure (the MTA retries), "
        "65 if the message can never be accepted.",
    )
    deliver.add_argument(
        "--from",
        "-f",
        dest="sender",
        metavar="ADDR",
        help="envelope sender (Postfix: ${sender}; empty for bounces); default: the mbox "
        "'From ' line, else Return-Path, else the From header",
    )
    deliver.add_argument(
        "--to",
        "-t",
        action="append",
        metavar="ADDR",
        help="envelope recipient, repeatable (Postfix: ${recipient}); default: support_address",
    )
    deliver.add_argument("--verbose", "-v", action="store_true", help="print the queue id")
    # A bad config file or an unexpected error must not bounce mail (Postfix maps 78 and
    # 70 to 5.x.x): every failure except a message that can never fit is temporary.
    deliver.set_defaults(handler=cmd_deliver, failure_code=EX_TEMPFAIL)
