"""Config files for tests, the daemon as a real subprocess, and its loops in this one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.daemon import merge as merge  # re-exported for the tests
from benchmarks.daemon import to_toml  # one small TOML writer for tests and benchmarks
from support.servers import free_port, wait_for_port

if TYPE_CHECKING:
    from mailbot.app import Application

REPO = Path(__file__).resolve().parents[2]


def base_config(tmp: Path, smtp_port: int, sink_port: int | None) -> dict[str, Any]:
    outbound: dict[str, Any] = {
        "from_address": "support@example.com",
        "retry_initial": 0.2,
        "retry_max": 1.0,
        "poll_interval": 0.2,
    }
    if sink_port is None:
        outbound |= {"transport": "maildir", "maildir": str(tmp / "outbox")}
    else:
        outbound |= {"transport": "smtp", "host": "127.0.0.1", "port": sink_port, "timeout": 5.0}
    return {
        "mailbot": {"support_address": "support@example.com", "aliases": ["help@example.com"]},
        "database": {"url": f"sqlite:///{tmp / 'mailbot.db'}", "busy_timeout": 2.0},
        "intake": {"smtp": {"host": "127.0.0.1", "port": smtp_port}},
        "worker": {"poll_interval": 0.2},
        "outbound": outbound,
        "acknowledgement": {"templates": str(REPO / "templates")},
    }


def write_config(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "mailbot.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def run_cli(config_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def cli_json(config_path: Path, *args: str) -> Any:
    result = run_cli(config_path, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Daemon:
    """``mailbot run`` as a subprocess."""

    def __init__(
        self, config_path: Path, port: int, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.config_path = config_path
        self.port = port
        self.log_path = log_path
        self.env = env or {}  # extra environment, e.g. NOTIFY_SOCKET
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> Daemon:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(self.config_path), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        log.close()
        if wait:
            wait_for_port(self.port)
        return self

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in daemon log:\n{self.log()}")


def new_port() -> int:
    return free_port()


def run_here(app: Application, client: Callable[[], None]) -> None:
    """Run the daemon's loops (``Application.run``) in this process until ``client``,
    run in a thread meanwhile, returns; then stop it as SIGTERM would."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        daemon = asyncio.create_task(app.run(ready=lambda: loop.call_soon(ready.set)))
        await ready.wait()
        try:
            await asyncio.to_thread(client)
        finally:
            app.request_stop()
            await daemon

    asyncio.run(main())
