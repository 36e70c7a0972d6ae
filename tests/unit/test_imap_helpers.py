"""Pure parts of the IMAP intake: config, password lookup, URLs, batching, Return-Path."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from mailbot.batching import chunks, size_groups
from mailbot.config import parse_settings
from mailbot.errors import ConfigError
from mailbot.intake.imap_conn import ImapConfig, describe_error, imap_config
from mailbot.intake.imap_sweep import origin_url, return_path

BASE = {
    "mailbot": {"support_address": "support@example.com"},
    "outbound": {"from_address": "support@example.com"},
}


def settings(tmp_path: Path, **imap: object):  # type: ignore[no-untyped-def]
    return parse_settings({**BASE, "intake": {"imap": imap}}, tmp_path)


def cfg(**overrides: object) -> ImapConfig:
    values: dict = {
        "host": "imap.example.com",
        "port": 993,
        "tls": "implicit",
        "verify_certificates": True,
        "username": "support@example.com",
        "password": "pw",
    }
    return ImapConfig(**(values | overrides))


# ---------------------------------------------------------------- configuration


def test_imap_is_off_by_default_and_ports_follow_tls(tmp_path: Path) -> None:
    section = settings(tmp_path).intake.imap
    assert section.enabled is False
    assert section.effective_port == 993
    assert settings(tmp_path, tls="starttls").intake.imap.effective_port == 143
    assert settings(tmp_path, tls="none", port=1143).intake.imap.effective_port == 1143


def test_a_password_in_the_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'intake\.imap\.password'"):
        settings(tmp_path, password="hunter2")


def test_enabled_needs_a_username(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'username' is required"):
        settings(tmp_path, enabled=True)


def test_idle_renewal_cannot_exceed_ten_minutes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"intake\.imap\.idle_renew"):
        settings(tmp_path, idle_renew=601)


def test_folders_must_differ(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must all differ"):
        settings(tmp_path, processed_folder="INBOX")


def test_unknown_tls_mode_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"intake\.imap\.tls"):
        settings(tmp_path, tls="ssl")


def test_password_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_PW_FOR_TEST", "from-env")
    s = settings(tmp_path, username="u", password_env="IMAP_PW_FOR_TEST")
    assert imap_config(s).password == "from-env"


def test_missing_password_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAP_PW_FOR_TEST", raising=False)
    s = settings(tmp_path, username="u", password_env="IMAP_PW_FOR_TEST")
    with pytest.raises(ConfigError, match="IMAP_PW_FOR_TEST"):
        imap_config(s)


def test_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\nignored second line\n")
    s = settings(tmp_path, username="u", password_file="secret")
    assert imap_config(s).password == "from-file"


def test_unreadable_or_empty_password_file(tmp_path: Path) -> None:
    s = settings(tmp_path, username="u", password_file="nope")
    with pytest.raises(ConfigError, match=r"password_file': cannot read .*nope"):
        imap_config(s)
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        imap_config(settings(tmp_path, username="u", password_file="empty"))


def test_config_repr_hides_the_password() -> None:
    assert "pw" not in repr(cfg(password="pw-secret-value"))


# ---------------------------------------------------------------- helpers of a sweep


def test_origin_names_mailbox_uidvalidity_and_uid() -> None:
    url = origin_url(cfg(folder="Support/In box"), 1700000000, 42)
    assert url == (
        "imap://support%40example.com@imap.example.com:993/Support/In%20box"
        ";UIDVALIDITY=1700000000/;UID=42"
    )
    assert url != origin_url(cfg(folder="Support/In box"), 1700000001, 42)


def test_chunks() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 100)) == []


def test_size_groups_bound_the_bytes_per_fetch() -> None:
    sizes = {1: 40, 2: 40, 3: 40, 4: 500, 5: 10}
    assert list(size_groups([1, 2, 3, 4, 5], sizes, 100)) == [[1, 2], [3], [4], [5]]
    assert list(size_groups([], {}, 100)) == []


def test_size_groups_can_also_bound_the_count() -> None:
    sizes = {n: 10 for n in range(1, 6)}
    assert list(size_groups(range(1, 6), sizes, 100, most=2)) == [[1, 2], [3, 4], [5]]
    assert list(size_groups(range(1, 6), sizes, 25, most=4)) == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Return-Path: <alice@example.com>\r\nSubject: x\r\n\r\nbody", "alice@example.com"),
        (b"Return-Path: <>\r\nSubject: bounce\r\n\r\nbody", ""),
        (b"Subject: appended by a client\r\n\r\nReturn-Path: <not@header>\r\n", None),
        (b"Return-Path: bare@example.com\n\nbody", "bare@example.com"),
        (b"Subject: no body at all", None),
    ],
)
def test_return_path(raw: bytes, expected: str | None) -> None:
    assert return_path(raw) == expected


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (LoginError("[AUTHENTICATIONFAILED] Authentication failed."), "login refused"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError(), "timed out after 60s"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve host"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS failure"),
        (IMAPClientError("select failed: Mailbox doesn't exist"), "IMAP error: select"),
    ],
)
def test_errors_read_as_one_line(exc: BaseException, needle: str) -> None:
    text = describe_error(exc, cfg(timeout=60.0))
    assert needle in text
    assert "\n" not in text


def test_unreadable_ca_file_is_a_config_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("IMAP_PW_FOR_TEST", "pw")
    s = settings(tmp_path, username="u", password_env="IMAP_PW_FOR_TEST", ca_file="missing.pem")
    with pytest.raises(ConfigError, match=r"intake\.imap\.ca_file': cannot read .*missing\.pem"):
        imap_config(s)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    junk = settings(tmp_path, username="u", password_env="IMAP_PW_FOR_TEST", ca_file="junk.pem")
    with pytest.raises(ConfigError, match="ca_file"):
        imap_config(junk)
