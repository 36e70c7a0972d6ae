"""sd_notify datagrams, received on a real unix socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mailbot.ops.notify import Notifier


def receive(sock: socket.socket) -> list[str]:
    sock.settimeout(5)
    return sock.recv(4096).decode().split("\n")


def test_ready_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
        assert notifier.ready("running")
        fields = receive(sock)
        assert "READY=1" in fields and "STATUS=running" in fields
        assert f"MAINPID={os.getpid()}" in fields
        assert notifier.watchdog()
        assert receive(sock) == ["WATCHDOG=1"]
        assert notifier.stopping()
        assert receive(sock)[0] == "STOPPING=1"


def test_abstract_socket_address() -> None:
    name = f"mailbot-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert receive(sock) == ["WATCHDOG=1"]


def test_without_systemd_nothing_is_sent(tmp_path: Path) -> None:
    assert not Notifier.from_environ({}).ready("running")
    # a socket path nobody listens on: no exception, just False
    assert not Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone")}).watchdog()


def test_watchdog_interval_is_half_the_timeout_and_only_for_us() -> None:
    mine = Notifier.from_environ(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_interval == 15.0
    other = Notifier.from_environ(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval is None
    assert Notifier.from_environ({"NOTIFY_SOCKET": "/x"}).watchdog_interval is None
