"""Sub-commands of ``mailbot``: each module exposes ``register(subparsers)``.

A command handler takes ``(args, settings)`` and returns an exit code, or raises
``CommandError`` with a one-line message and its exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mailbot.commands import run, tickets

Registrar = Callable[[argparse._SubParsersAction], None]

REGISTRARS: tuple[Registrar, ...] = (
    run.register,
    tickets.register,
)
