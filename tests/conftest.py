"""Shared fixtures: a real SMTP sink, test configs, the daemon as a process, an in-process app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import Daemon, base_config, merge, write_config
from support.postgres import postgres_url, store_url  # noqa: F401  (fixtures)
from support.servers import Sink, free_port


@pytest.fixture
def dovecot():  # type: ignore[no-untyped-def]
    """A private real Dovecot (IMAP on a free loopback port); skips when it cannot run here.

    ``dovecot.start()/stop()/restart()``, ``append``, ``count``, ``messages``; see
    tests/support/dovecot.py.  Needs root and ``dovecot-imapd``.
    """
    from support.dovecot import running_dovecot, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_dovecot() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_config(tmp_path: Path, sink: Sink):  # type: ignore[no-untyped-def]
    """``make_config(overrides) -> (path, config dict)`` for a daemon relaying to the sink."""

    def _make(overrides: dict | None = None, relay: bool = True) -> tuple[Path, dict]:
        config = base_config(tmp_path, free_port(), sink.port if relay else None)
        config = merge(config, overrides or {})
        return write_config(tmp_path, config), config

    return _make


@pytest.fixture
def daemon(tmp_path: Path, make_config) -> Iterator:  # type: ignore[no-untyped-def]
    """``daemon(overrides) -> Daemon`` started and listening; stopped (or killed) afterwards."""
    started: list[Daemon] = []

    def _start(overrides: dict | None = None) -> Daemon:
        path, config = make_config(overrides)
        proc = Daemon(path, config["intake"]["smtp"]["port"], tmp_path / "daemon.log")
        started.append(proc.start())
        return proc

    yield _start
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


@pytest.fixture
def app(tmp_path: Path, sink: Sink):  # type: ignore[no-untyped-def]
    """An in-process Application on a temp SQLite file, relaying to the sink; use app.drain()."""
    from mailbot.app import Application
    from mailbot.config import parse_settings

    def _build(overrides: dict | None = None) -> Application:
        config = merge(base_config(tmp_path, free_port(), sink.port), overrides or {})
        return Application(parse_settings(config, tmp_path))

    return _build


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """With MAILBOT_REQUIRE_INTEGRATION=1 (set by .ci/run) a skipped test is a failure."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("MAILBOT_REQUIRE_INTEGRATION") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped, but MAILBOT_REQUIRE_INTEGRATION=1 requires it to run: {report.longrepr}"
        )
