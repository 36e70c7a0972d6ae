"""The pure parts of ``mailbot deliver``: size limit, mbox postmark, sender guess."""

from __future__ import annotations

import io

import pytest

from mailbot.commands.common import EX_DATAERR, CommandError
from mailbot.commands.deliver import guess_sender, read_limited, split_postmark


def test_read_limited_accepts_up_to_the_limit() -> None:
    assert read_limited(io.BytesIO(b"x" * 10), 10) == b"x" * 10


def test_read_limited_refuses_over_the_limit_and_empty() -> None:
    with pytest.raises(CommandError) as over:
        read_limited(io.BytesIO(b"x" * 11), 10)
    assert over.value.code == EX_DATAERR and "limit of 10 bytes" in str(over.value)
    with pytest.raises(CommandError) as empty:
        read_limited(io.BytesIO(b"\n\n"), 10)
    assert empty.value.code == EX_DATAERR


def test_postmark_line_is_removed_and_names_the_sender() -> None:
    raw = b"From bob@example.org Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n"
    assert split_postmark(raw) == (b"Subject: hi\n\nbody\n", "bob@example.org")
    assert split_postmark(b"From MAILER-DAEMON Mon Jan 1\nSubject: x\n\n")[1] == ""
    assert split_postmark(b"Subject: hi\n\n") == (b"Subject: hi\n\n", None)


def test_sender_guess_prefers_return_path_then_from() -> None:
    assert guess_sender(b"Return-Path: <a@x.org>\nFrom: B <b@y.org>\n\n") == "a@x.org"
    assert guess_sender(b"Return-Path: <>\nFrom: B <b@y.org>\n\n") == ""
    assert guess_sender(b"From: B <b@y.org>\n\n") == "b@y.org"
