"""contrib/mailbot.service: the options the issue requires, and a command line we accept."""

from __future__ import annotations

import shlex
from pathlib import Path

from mailbot.cli import build_parser

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "mailbot.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_notify_watchdog_and_hardening() -> None:
    unit = directives()
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "mailbot",
        "ReadWritePaths": "/var/lib/mailbot",
    }.items():
        assert unit[key] == [value], key


def test_exec_start_is_a_valid_mailbot_command_line() -> None:
    [exec_start] = directives()["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/mailbot")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.log_format == "json"
