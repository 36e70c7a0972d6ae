"""``mailbot import`` takes each message's sender from the headers its parse found.

It must be the sender ``guess_sender`` reads from the header block alone (what the
import did before, and what ``mailbot deliver`` still does): Return-Path, else From,
"" for the null sender.  Only an unreadable message has its header block parsed again.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot import worker
from mailbot.commands.deliver import guess_sender
from mailbot.commands.prepare_pool import prepare_raw
from mailbot.message import InboundMail
from mailbot.pipeline.limits import Limits
from mailbot.store.threads import ThreadSettings
from mailbot.worker import Rejected

LIMITS = Limits()
THREAD = ThreadSettings()
BODY = b"\nHello,\n\nthe printer is on fire.\n"

HEADER_BLOCKS = [
    b"Return-Path: <bounces@lists.example>\nFrom: Ann <ann@customer.example>\n",
    b"Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example>\n",
    b"From: ann@customer.example\n",
    b'From: "Doe, Ann" <ann@customer.example>\n',
    b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@customer.example>\n",
    b"From: Ann\n <ann@customer.example>\n",  # folded
    b"From: first@customer.example\nFrom: second@customer.example\n",
    b"Return-Path:   <spaced@customer.example>  \nFrom: b@customer.example\n",
    b"Subject: nobody said who\n",
]


@pytest.mark.parametrize("headers", HEADER_BLOCKS)
def test_the_sender_is_what_the_header_block_alone_gives(headers: bytes) -> None:
    raw = b"Message-ID: <m1@customer.example>\nSubject: x\n" + headers + BODY
    prepared = prepare_raw(raw, LIMITS, THREAD)
    assert isinstance(prepared.mail, InboundMail)
    assert prepared.mail_from == guess_sender(raw)
    assert prepared.mail.envelope_from == prepared.mail_from  # what the pipeline screens on
    assert prepared.raw_sha256 == hashlib.sha256(raw).hexdigest()


_ADDRESS = st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,5})?@[a-z]{1,8}\.example", fullmatch=True)
_NAME = st.text(st.sampled_from('abc XYZ,."()'), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    return_path=st.one_of(st.none(), st.just(""), _ADDRESS),
    name=_NAME,
    address=_ADDRESS,
)
def test_generated_senders_agree(return_path: str | None, name: str, address: str) -> None:
    quoted = name.replace("\\", "").replace('"', "")
    lines = [f'From: "{quoted}" <{address}>']
    if return_path is not None:
        lines.insert(0, f"Return-Path: <{return_path}>")
    raw = ("\n".join(lines) + "\nSubject: s\n").encode() + BODY
    prepared = prepare_raw(raw, LIMITS, THREAD)
    assert (
        prepared.mail_from == guess_sender(raw) == (address if return_path is None else return_path)
    )


def test_messages_over_a_limit_keep_their_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a limit the raw scan finds (no mail yet) and one found on the parsed mail
    (the mail kept for the quarantine)."""
    raw = b"Return-Path: <ann@customer.example>\nFrom: bob@customer.example\n" + BODY
    before = prepare_raw(
        raw.replace(b"\n\n", b"\nX-A: 1\nX-B: 2\n\n", 1), Limits(max_headers=2), THREAD
    )
    assert isinstance(before.mail, Rejected) and before.mail.mail is None
    assert before.mail_from == "ann@customer.example"
    # The limits the raw scan cannot see (decoded attachments) are checked on the parsed
    # mail; which one does not matter here.
    monkeypatch.setattr(worker, "check_parsed", lambda mail, limits: "decoded attachments")
    after = prepare_raw(raw, LIMITS, THREAD)
    assert isinstance(after.mail, Rejected) and after.mail.mail is not None
    assert after.mail_from == "ann@customer.example" == after.mail.mail.envelope_from
