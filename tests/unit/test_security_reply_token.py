"""Reply tokens: an HMAC of the ticket number at the end of our Message-IDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.errors import ConfigError
from mailbot.outbound.compose import make_message_id
from mailbot.outbound.reply_token import ReplyTokens, configured_secret, stored_secret, with_token
from mailbot.store.db import Store

TOKENS = ReplyTokens(b"0123456789abcdef-test-secret")


def test_token_round_trip() -> None:
    mid = make_message_id("example.com", TOKENS.token(1001))
    assert mid.endswith("@example.com") and ".r1001-" in mid
    assert TOKENS.ticket_number(mid) == 1001
    assert TOKENS.ticket_number(f"<{mid.upper()}>") == 1001  # case and brackets don't matter
    assert TOKENS.proves(["other@x", mid], 1001)
    assert not TOKENS.proves([mid], 1002)


def test_forged_or_foreign_tokens_are_refused() -> None:
    good = with_token("page-SUP-1001@example.com", TOKENS.token(1001))
    tag = TOKENS.tag(1001)
    flipped = good.replace(tag, tag[:-1] + ("0" if tag[-1] != "0" else "1"))
    assert TOKENS.ticket_number(flipped) is None
    assert TOKENS.ticket_number(good.replace("r1001-", "r1002-")) is None
    other_key = ReplyTokens(b"another-secret-of-16+chars")
    assert other_key.ticket_number(good) is None
    assert TOKENS.ticket_number("plain@customer.example") is None
    assert TOKENS.ticket_number("") is None


def test_secret_from_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MB_SECRET", raising=False)
    assert configured_secret("MB_SECRET", None) is None
    path = tmp_path / "secret"
    path.write_text("file-secret-of-enough-length\n")
    assert configured_secret("MB_SECRET", str(path)) == b"file-secret-of-enough-length"
    monkeypatch.setenv("MB_SECRET", "env-secret-of-enough-length")
    assert configured_secret("MB_SECRET", str(path)) == b"env-secret-of-enough-length"


def test_bad_secrets_are_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MB_SECRET", raising=False)
    with pytest.raises(ConfigError, match="security.reply_token_secret_file.*cannot read"):
        configured_secret("MB_SECRET", str(tmp_path / "missing"))
    (tmp_path / "short").write_text("short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        configured_secret("MB_SECRET", str(tmp_path / "short"))
    monkeypatch.setenv("MB_SECRET", "tiny")
    with pytest.raises(ConfigError, match="MB_SECRET"):
        configured_secret("MB_SECRET", None)


def test_generated_secret_is_stored_once_and_shared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first, second = Store.open(url), Store.open(url)
    try:
        with first.transaction() as session:
            one = stored_secret(session)
        with second.transaction() as session:
            two = stored_secret(session)
        assert one == two and len(one) == 64
    finally:
        first.dispose()
        second.dispose()
