"""Logging set-up: readable lines by default, one JSON object per line on request."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import NamedTuple

_EXTRA_FIELDS = ("message_id", "ticket")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            if getattr(record, name, None) is not None:
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReopenableFileHandler(logging.FileHandler):
    """A log file that SIGHUP reopens, so logrotate can move it away (no copytruncate)."""

    def reopen(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()


def reopen_log_files() -> None:
    """Reopen every log file the root logger writes to (called on SIGHUP)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ReopenableFileHandler):
            handler.reopen()


class LogOptions(NamedTuple):
    """What ``setup_logging`` was given: a worker process sets up its logging the same."""

    level: str | int = "INFO"
    fmt: str = "text"
    debug: bool = False
    file: str | None = None

    @classmethod
    def current(cls) -> LogOptions:
        """Read back from the root logger (as ``setup_logging`` left it)."""
        root = logging.getLogger()
        handler = root.handlers[0] if root.handlers else None
        return cls(
            level=logging.getLevelName(root.level),
            fmt="json" if handler and isinstance(handler.formatter, JsonFormatter) else "text",
            debug=root.level == logging.DEBUG,
            file=handler.baseFilename if isinstance(handler, ReopenableFileHandler) else None,
        )


def setup_logging(
    level: str | int = "INFO", fmt: str = "text", debug: bool = False, file: str | None = None
) -> None:
    handler: logging.Handler = (
        ReopenableFileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else level)
    noisy_loggers = ("mail.log", "mailparser", "sqlalchemy", "aiosmtpd", "httpx", "httpcore")
    for noisy in (*noisy_loggers, "imapclient"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
