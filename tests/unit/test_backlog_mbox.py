"""Splitting an mbox for ``mailbot import``: the same messages as ``mailbox.mbox``."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.commands.backlog import mbox_spans, open_backlog
from mailbot.commands.common import CommandError

LINES = [
    b"From MAILER-DAEMON Mon Mar  3 09:00:00 2025",
    b"From x",
    b"From ",
    b"From",
    b">From quoted",
    b"Subject: hello",
    b"",
    b"",
    b"body text",
    b"\r",
    b" From indented",
]


def _as_mailbox_splits(path: Path) -> list[bytes]:
    box = mailbox.mbox(str(path), create=False)
    return [box.get_bytes(key) for key in box.iterkeys()]


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=30),
    newline_at_end=st.booleans(),
)
def test_an_mbox_splits_as_the_standard_library_splits_it(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], newline_at_end: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    path = tmp_path_factory.mktemp("mbox") / "box.mbox"
    path.write_bytes(data)
    ours = [data[start:stop] if start < stop else b"" for start, stop in mbox_spans(data)]
    assert ours == _as_mailbox_splits(path)


def test_open_backlog_reads_a_mapped_mbox(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(
        b"From a@x Mon Mar  3 09:00:00 2025\nSubject: one\n\nFrom here on, text\n\n"
        b"From b@x Mon Mar  3 09:00:01 2025\nSubject: two\n\n>From quoted\n"
    )
    count, messages = open_backlog(path)
    # An unquoted "From " line starts a message, as every mbox reader takes it.
    assert count == 3
    assert list(messages) == _as_mailbox_splits(path)


def test_an_empty_mbox_has_no_messages(tmp_path: Path) -> None:
    path = tmp_path / "empty.mbox"
    path.write_bytes(b"")
    count, messages = open_backlog(path)
    assert (count, list(messages)) == (0, [])


def test_a_file_that_is_not_an_mbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Subject: not an mbox\n\nFrom here\n")
    with pytest.raises(CommandError, match="not an mbox file"):
        open_backlog(path)
