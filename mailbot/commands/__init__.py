"""Sub-commands of ``mailbot``: each module exposes ``register(subparsers)``.

A command handler takes ``(args, settings)`` and returns an exit code, or raises
``CommandError`` with a one-line message and its exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mailbot.commands import (
    check,
    db,
    deliver,
    imap_check,
    importer,
    outbox,
    quarantine,
    run,
    tickets,
)

Registrar = Callable[[argparse._SubParsersAction], None]

REGISTRARS: tuple[Registrar, ...] = (
    run.register,
    tickets.register,
    imap_check.register,
    deliver.register,
    check.register,
    quarantine.register,
    outbox.register,
    importer.register,
    db.register,
)
