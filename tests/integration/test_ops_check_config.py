"""``mailbot check-config`` against a good setup and against each broken part."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import REPO, run_cli
from support.servers import Sink, free_port

pytestmark = pytest.mark.integration


def check(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    lines = result.stdout.strip().splitlines()
    by_name = dict(line.split(": ", 1) for line in lines)
    assert len(by_name) == len(lines), lines  # one line per check
    return result.returncode, by_name


def test_good_setup_all_ok(make_config, sink: Sink) -> None:
    config, _ = make_config()
    code, lines = check(config)
    assert code == 0, lines
    assert set(lines) == {"config", "database", "templates", "outbound", "reply-tokens"}
    assert all(value.startswith("OK") for value in lines.values()), lines
    assert f"relay 127.0.0.1:{sink.port}: EHLO NOOP ok" in lines["outbound"]


def test_relay_down(make_config) -> None:
    closed = free_port()
    config, _ = make_config({"outbound": {"port": closed}})
    code, lines = check(config)
    assert code == 69
    assert lines["outbound"].startswith(f"FAILED: relay 127.0.0.1:{closed}: ")
    assert "refused" in lines["outbound"].lower()
    assert lines["database"].startswith("OK") and lines["templates"].startswith("OK")


def test_relay_without_auth_when_login_is_configured(make_config) -> None:
    config, _ = make_config({"outbound": {"username": "mailbot", "password_env": "MB_TEST_PW"}})
    code, lines = check(config, env={"MB_TEST_PW": "secret"})
    assert code == 69
    assert lines["outbound"].startswith("FAILED:") and "AUTH" in lines["outbound"]


def test_password_variable_missing(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MB_TEST_PW_UNSET", raising=False)
    config, _ = make_config(
        {"outbound": {"username": "mailbot", "password_env": "MB_TEST_PW_UNSET"}}
    )
    code, lines = check(config)
    assert code == 69 and "$MB_TEST_PW_UNSET is not" in lines["outbound"]


def test_database_unreachable(make_config) -> None:
    closed = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/test"
    config, _ = make_config({"database": {"url": url}})
    code, lines = check(config)
    assert code == 69
    assert lines["database"].startswith(f"FAILED: postgresql+psycopg://postgres@127.0.0.1:{closed}")
    assert lines["outbound"].startswith("OK")


def test_broken_template(make_config, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    (templates / "ack" / "emergency.txt.j2").write_text("Hello {{ customer_name \n")
    config, _ = make_config({"acknowledgement": {"templates": str(templates)}})
    code, lines = check(config)
    assert code == 69
    assert lines["templates"].startswith("FAILED:") and "emergency.txt.j2" in lines["templates"]


def test_missing_templates(make_config, tmp_path: Path) -> None:
    config, _ = make_config({"acknowledgement": {"templates": str(tmp_path / "nothing")}})
    code, lines = check(config)
    assert code == 69 and "ack/default.txt.j2 is missing" in lines["templates"]


def test_maildir_that_cannot_be_created(make_config, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config, _ = make_config({"outbound": {"maildir": str(blocker / "outbox")}}, relay=False)
    code, lines = check(config)
    assert code == 69 and lines["outbound"].startswith("FAILED: maildir")


def test_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        "[mailbot]\nsupport_address = 'support@example.com'\n[outbound]\nport = 'x'\n"
    )
    result = run_cli(config, "check-config")
    assert result.returncode == 78
    assert "outbound" in result.stderr and result.stdout == ""


def test_imap_checked_when_enabled(make_config, dovecot) -> None:
    from support.dovecot import PASSWORD, PASSWORD_ENV, imap_section

    config, _ = make_config({"intake": {"imap": imap_section(dovecot)}})
    code, lines = check(config, env={PASSWORD_ENV: PASSWORD})
    assert code == 0, lines
    assert lines["imap"].startswith("OK") and "INBOX" in lines["imap"]
    code, lines = check(config, env={PASSWORD_ENV: "wrong password"})
    assert code == 69 and lines["imap"].startswith("FAILED:")
    assert all(lines[name].startswith("OK") for name in ("database", "templates", "outbound"))


def test_unreadable_reply_token_secret_fails_the_check(make_config, tmp_path: Path) -> None:
    config, _ = make_config({"security": {"reply_token_secret_file": str(tmp_path / "none")}})
    code, lines = check(config)
    assert code == 69
    assert lines["reply-tokens"].startswith("FAILED: key 'security.reply_token_secret_file'")
