"""What every command needs: exit codes, the user-facing error, opening the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.pipeline.threading_rules import reference_pattern
from mailbot.store.db import DAEMON_CACHE_KIB, Store, utcnow
from mailbot.store.schema import SchemaError

if TYPE_CHECKING:
    from mailbot.worker import Worker

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78


class CommandError(MailbotError):
    """A user-facing failure with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def open_store(
    settings: Settings, cache_kib: int = DAEMON_CACHE_KIB, temp_in_memory: bool = False
) -> Store:
    try:
        return Store.open(
            settings.database_url(),
            busy_timeout=settings.database.busy_timeout,
            cache_kib=cache_kib,
            temp_in_memory=temp_in_memory,
        )
    except OperationalError as exc:
        raise CommandError(f"cannot open database: {exc.orig}", EX_UNAVAILABLE) from None
    except SchemaError as exc:  # older or newer than this code: `mailbot db upgrade`
        raise CommandError(str(exc), EX_CONFIG) from None


def parse_ticket_ref(settings: Settings, ref: str) -> int:
    """``SUP-1001``, ``[SUP-1001]`` or ``1001`` → 1001."""
    prefix = settings.mailbot.ticket_prefix
    match = reference_pattern(prefix).fullmatch(f"[{ref.strip('[]')}]")
    if match is not None:
        return int(match.group(1))
    if ref.isdigit():
        return int(ref)
    raise CommandError(f"not a ticket reference: {ref!r} (expected {prefix}-NNNN)", EX_USAGE)


def build_application(settings: Settings, store: Store | None = None):  # type: ignore[no-untyped-def]
    """The Application, with broken templates reported as one line (exit 78)."""
    from mailbot.app import Application

    with _templates_reported(settings):
        return Application(settings, store=store or open_store(settings))


def build_worker(settings: Settings, store: Store) -> Worker:
    """Only the worker and what it decides with, as the daemon's worker process builds
    it (``mailbot import``): not the daemon's listener, sender and metrics, whose
    modules cost the importing process 70 ms at its start."""
    from mailbot.worker_setup import WorkerParts

    with _templates_reported(settings):
        return WorkerParts.build(settings, store, utcnow).worker


@contextmanager
def _templates_reported(settings: Settings) -> Iterator[None]:
    from jinja2 import TemplateError

    try:
        yield
    except TemplateError as exc:
        folder = settings.resolve_path(settings.acknowledgement.templates)
        raise CommandError(
            f"templates in {folder}: {type(exc).__name__}: {exc}", EX_CONFIG
        ) from None
