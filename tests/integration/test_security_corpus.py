"""The corpus (tests/corpus): every message through the real pipeline, with its outcome.

One mailbot on a temp SQLite file, two set-up tickets (SUP-1001 from Alice with Bob on
Cc, SUP-1002 from Dave), then every ``messages/*.eml`` in order; each must end as
``expected.json`` says (created / appended / ignored / quarantined, acknowledged or
not, which ticket), and no acknowledgement may carry an injected header, a recipient
other than the sender (and the ticket's participants), or another ticket's reference.
"""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from corpus import build_corpus
from support.hostile import OUTCOMES, Harness
from support.servers import Sink

from mailbot.message import parse

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SINGLE = ("From", "To", "Subject", "Message-ID", "Date", "In-Reply-To", "Auto-Submitted")


def test_the_corpus_is_what_the_builder_writes(tmp_path: Path) -> None:
    count = build_corpus.write(tmp_path)
    assert count >= 150
    assert (tmp_path / "expected.json").read_text() == (CORPUS / "expected.json").read_text()
    built = sorted(p.name for p in (tmp_path / "messages").glob("*.eml"))
    assert built == sorted(p.name for p in (CORPUS / "messages").glob("*.eml"))
    for name in built:
        assert (tmp_path / "messages" / name).read_bytes() == (
            CORPUS / "messages" / name
        ).read_bytes(), name


def check_ack(payload: bytes, case: dict, sender: str | None) -> None:
    """One header of each kind, no Bcc, to the sender, nothing evaluated, nothing leaked."""
    ack = message_from_bytes(payload, policy=default)
    for name in SINGLE:
        assert len(ack.get_all(name) or []) <= 1, (case["file"], name)
    assert ack.get_all("Bcc") is None, case["file"]
    assert ack["To"].addresses[0].addr_spec.lower() == sender, case["file"]
    if case["ticket"] == "new":  # nothing about the tickets it may have named
        assert b"SUP-1001" not in payload and b"SUP-1002" not in payload, case["file"]
    text = ack.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    if "Jinja" in case["note"]:  # template syntax from the customer stays text
        assert "{{ 7*7 }}" in str(ack["Subject"]) + text or "{{ config }}" in text, case["file"]
        assert "49" not in text.replace(str(ack["Message-ID"]), ""), case["file"]


def test_every_corpus_message_reaches_its_expected_outcome(tmp_path: Path, sink: Sink) -> None:
    bot = Harness(
        tmp_path,
        sink,
        {
            "acknowledgement": {"max_per_sender_per_hour": 1000},
            "staff": {"domains": ["example.com"]},
        },
    )
    try:
        first = bot.deliver((CORPUS / "setup-1.eml").read_bytes(), "alice@customer.example")
        second = bot.deliver((CORPUS / "setup-2.eml").read_bytes(), "dave@other.example")
        assert (first.ticket, second.ticket) == (1001, 1002)
        ack1, ack2 = first.acks[0].message_id, second.acks[0].message_id
        local, domain = ack1.rsplit("@", 1)
        tampered = f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"
        replace = {b"@@ACK1@@": ack1, b"@@ACK2@@": ack2, b"@@ACK1_TAMPERED@@": tampered}

        expected = json.loads((CORPUS / "expected.json").read_text())
        assert len(expected) >= 150
        seen_tickets = {1001, 1002}
        failures = []
        for case in expected:
            raw = (CORPUS / "messages" / case["file"]).read_bytes()
            for needle, value in replace.items():
                raw = raw.replace(needle, value.encode())
            result = bot.deliver(raw, case["mail_from"], send=False)
            assert result.outcome in OUTCOMES, case["file"]
            got = {
                "outcome": result.outcome,
                "ack": result.acked,
                "ticket": (
                    None
                    if result.ticket is None
                    else "new"
                    if result.ticket not in seen_tickets
                    else f"SUP-{result.ticket}"
                ),
            }
            want = {k: case[k] for k in ("outcome", "ack", "ticket")}
            if got != want:
                failures.append(f"{case['file']}: want {want}, got {got} ({result.reason[:200]})")
            if case["text"]:  # declared charsets are decoded into readable text
                entry = next(
                    e for e in bot.thread(result.ticket) if e.inbound_id == result.inbound_id
                )  # type: ignore[arg-type]
                if case["text"] not in (entry.text_full or entry.text):
                    failures.append(f"{case['file']}: {case['text']!r} not in {entry.text!r}")
            if result.ticket is not None:
                seen_tickets.add(result.ticket)
            sender = parse(raw).from_address
            for ack in result.acks:
                check_ack(ack.payload, case, sender)
        assert not failures, "\n".join(failures)

        bot.app.drain()  # everything queued goes out through the real sink
        delivered = {m.message["Message-ID"].strip("<> ") for m in sink.received}
        for row in bot.outbox("ack"):
            if row.recipient.isascii():
                assert row.message_id in delivered, row.recipient
    finally:
        bot.close()
