"""``mailbot tickets attachment REF N -o FILE``: write one attachment of a ticket out.

N is the attachment's number in ``tickets show`` ("Attachment 2: …"), counted over the
whole thread in order; inline images count too.  ``-o -`` writes to standard output.
An existing FILE is not overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mailbot.commands.common import (
    EX_CANTCREAT,
    EX_NOINPUT,
    EX_OK,
    CommandError,
    open_store,
    parse_ticket_ref,
)
from mailbot.config import Settings
from mailbot.store.models import AttachmentBlob
from mailbot.store.repo import ticket_by_number
from mailbot.views import printable, ticket_attachments


def _write(path: str, content: bytes, force: bool) -> None:
    if path == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise CommandError(f"{target}: exists (use --force to overwrite)", EX_CANTCREAT) from None
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}", EX_CANTCREAT) from None
    with os.fdopen(fd, "wb") as out:
        out.write(content)


def cmd_attachment(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    number = parse_ticket_ref(settings, args.ref)
    with store.read() as session:
        ticket = ticket_by_number(session, number)
        if ticket is None or ticket.id is None:
            raise CommandError(f"no such ticket: {args.ref}", EX_NOINPUT)
        items = ticket_attachments(session, ticket.id)
        if not 1 <= args.number <= len(items):
            have = f"it has {len(items)}" if items else "it has none"
            raise CommandError(f"{args.ref}: no attachment {args.number} ({have})", EX_NOINPUT)
        item = items[args.number - 1]
        blob = session.get(AttachmentBlob, item.sha256)
        if blob is None:
            raise CommandError(f"{args.ref}: attachment {args.number}: content missing", EX_NOINPUT)
        content = bytes(blob.content)
    _write(args.output, content, args.force)
    if args.output != "-":
        size = f"{item.content_type}, {len(content)} bytes"
        print(f"{args.output}: {printable(item.filename)} ({size})", file=sys.stderr)
    return EX_OK


def register_action(actions: argparse._SubParsersAction) -> None:
    """Adds ``attachment`` to the ``tickets`` command's actions."""
    cmd = actions.add_parser(
        "attachment", help="write one attachment (number N as in `tickets show`) to a file"
    )
    cmd.add_argument("ref", help="ticket reference, e.g. SUP-1001")
    cmd.add_argument("number", type=int, metavar="N", help="attachment number in `tickets show`")
    cmd.add_argument("-o", "--output", required=True, metavar="FILE", help="where; - for stdout")
    cmd.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    cmd.set_defaults(handler=cmd_attachment)
