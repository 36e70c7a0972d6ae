"""``mailbot run`` as a real subprocess, configured for a benchmark, and its memory.

The config is the defaults (SQLite in the temp folder, worker and sender settings
untouched) except where a benchmark has to differ, each said here:
- the relay is the benchmark's sink;
- ``acknowledgement.max_per_sender_per_hour`` is raised to ACK_LIMIT, so every new
  ticket from a person is acknowledged although 100 senders write thousands of mails;
- the listener is on a free loopback port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ACK_LIMIT = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Nested dicts of scalars and lists as TOML tables."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, value in tables.items():
        lines.append(to_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def bench_config(
    folder: Path, db_url: str, relay_port: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mailbot": {"support_address": "support@example.com"},
        "database": {"url": db_url},
        "intake": {"smtp": {"host": "127.0.0.1", "port": free_port()}},
        "outbound": {
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": relay_port,
            "from_address": "support@example.com",
        },
        "acknowledgement": {
            "max_per_sender_per_hour": ACK_LIMIT,
            "templates": str(REPO / "templates"),
        },
    }
    return merge(config, overrides or {})


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'mailbot.db'}"


def write_config(folder: Path, config: dict[str, Any], name: str = "mailbot.toml") -> Path:
    path = folder / name
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def mailbot_command(config_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mailbot", "--config", str(config_path), *args]


class DaemonFailed(RuntimeError):
    """The daemon did not come up or died; the message ends with its log's tail."""


class Daemon:
    def __init__(
        self, config_path: Path, port: int, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.config_path = config_path
        self.port = port
        self.log_path = log_path
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Daemon:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                mailbot_command(self.config_path, "run"),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise DaemonFailed(f"mailbot run: not listening after {timeout:.0f}s{self.tail()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DaemonFailed(f"mailbot run exited with {self.proc.returncode}{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n  | " + "\n  | ".join(text) if text else ""

    def memory(self) -> dict[str, float]:
        """VmHWM (peak) and VmRSS of the daemon with its worker processes, in MB (10^6
        bytes), from /proc.  The peak is the sum of each process's own peak: an upper
        bound, as the two may not have peaked at the same moment."""
        totals = {"VmHWM": 0.0, "VmRSS": 0.0}
        for pid in (self.pid, *_children(self.pid)):
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    for line in status:
                        key, _, rest = line.partition(":")
                        if key in totals:
                            totals[key] += int(rest.split()[0]) * 1024 / 1e6  # kB → MB
            except FileNotFoundError:  # a worker process that just ended
                continue
        return {"peak_rss_mb": round(totals["VmHWM"], 1), "rss_mb": round(totals["VmRSS"], 1)}

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (Linux: /proc/PID/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
