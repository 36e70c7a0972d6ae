"""Header and template injection, and senders that cannot be told apart, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hostile import Harness
from support.servers import Sink

pytestmark = pytest.mark.integration


@pytest.fixture
def bot(tmp_path: Path, sink: Sink) -> Iterator[Harness]:
    harness = Harness(tmp_path, sink)
    yield harness
    harness.close()


def raw(from_: str, subject: str, mid: str) -> bytes:
    return (
        f"From: {from_}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\n\r\nHello.\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("from_", "subject"),
    [
        ("=?utf-8?Q?Eve=0D=0ABcc:_victim@target.example?= <eve@x.example>", "Plain"),
        ("Eve <eve@x.example>", "=?utf-8?Q?Hi=0D=0ABcc:_victim@target.example=0D=0A?="),
        ("Eve <eve@x.example>", "=?utf-8?B?SGkNClRvOiB2aWN0aW1AdGFyZ2V0LmV4YW1wbGU=?="),
        ("{{ 7*7 }} <eve@x.example>", "{% for i in range(3) %}{{ i }}{% endfor %}"),
    ],
)
def test_cr_lf_and_template_syntax_stay_plain_text(
    bot: Harness, sink: Sink, from_: str, subject: str
) -> None:
    result = bot.deliver(raw(from_, subject, "inj@x.example"), "eve@x.example")
    assert result.acked
    delivered = sink.wait_for(1)[-1]
    assert delivered.rcpt_tos == ["eve@x.example"]  # nobody else, whatever the headers said
    message = delivered.message
    assert message.get_all("Bcc") is None and len(message.get_all("To")) == 1
    assert "victim" not in str(message["To"])
    for name, value in message.items():
        assert "\n" not in str(value) and "\r" not in str(value), name
    text = delivered.text()
    if "{{" in from_:  # shown as written, never evaluated
        assert "Hello {{ 7*7 }}," in text
        assert '"{% for i in range(3) %}{{ i }}{% endfor %}"' in text
        assert "{% for i in range(3) %}" in str(message["Subject"])


@pytest.mark.parametrize(
    "from_",
    ["a@b.example)<c@d.example>", "", "Team: a@b.example, c@d.example;", "alice", "a@b, c@d"],
)
def test_an_ambiguous_sender_is_never_attributed(bot: Harness, sink: Sink, from_: str) -> None:
    result = bot.deliver(raw(from_, "Who am I", "amb@x.example"), "")
    assert (result.outcome, result.acked) == ("created", False)
    ticket = bot.ticket(result.ticket)  # type: ignore[arg-type]
    assert ticket.requester is None
    assert bot.thread(ticket.number)[0].from_addr == from_.strip()
    bot.app.drain()
    assert sink.received == []
