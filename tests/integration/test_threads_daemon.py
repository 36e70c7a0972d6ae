"""Participants on Cc, through the real daemon (``mailbot run``) and a real SMTP sink."""

from __future__ import annotations

import pytest
from support.daemon import cli_json
from support.mail import make_mail, send
from support.servers import Sink

pytestmark = pytest.mark.integration


def addresses(value: str | None) -> list[str]:
    from email.utils import getaddresses

    return sorted(a.lower() for _, a in getaddresses([value or ""]))


def test_the_acknowledgement_and_staff_relays_copy_the_participants(daemon, sink: Sink) -> None:  # type: ignore[no-untyped-def]
    bot = daemon({"staff": {"addresses": ["sam@example.com"]}})
    send(
        bot.port,
        make_mail(
            "[High] Login broken",
            to="support@example.com, Bob <bob@customer.example>",
            cc="Carol <carol@customer.example>, help@example.com",
            headers={"Reply-To": "mallory@evil.example"},
            message_id="login-1@customer.example",
        ),
    )
    ack = sink.wait_for(1)[0]
    assert sorted(ack.rcpt_tos) == [
        "alice@customer.example",
        "bob@customer.example",
        "carol@customer.example",
    ]
    message = ack.message
    assert addresses(message["To"]) == ["alice@customer.example"]
    assert addresses(message["Cc"]) == ["bob@customer.example", "carol@customer.example"]
    assert "[SUP-1001]" in message["Subject"]

    # Sam (staff) answers to support@ with Bob on Cc: the relay goes to Alice, with
    # Carol on Cc; Bob already has Sam's mail and gets no second copy.
    send(
        bot.port,
        make_mail(
            "Re: [SUP-1001] Login broken",
            sender="sam@example.com",
            sender_name="Sam Staff",
            cc="bob@customer.example",
            body="We rolled back the change; please try again.\n",
            in_reply_to="login-1@customer.example",
        ),
        mail_from="sam@example.com",
    )
    relay = sink.wait_for(2)[1]
    assert sorted(relay.rcpt_tos) == ["alice@customer.example", "carol@customer.example"]
    assert addresses(relay.message["To"]) == ["alice@customer.example"]
    assert addresses(relay.message["Cc"]) == ["carol@customer.example"]
    assert "rolled back" in relay.text()

    detail = cli_json(bot.config_path, "tickets", "show", "SUP-1001")
    assert [(p["address"], p["role"]) for p in detail["participants"]] == [
        ("alice@customer.example", "requester"),
        ("bob@customer.example", "cc"),
        ("carol@customer.example", "cc"),
        ("sam@example.com", "staff"),
    ]
    outbound = [m for m in detail["messages"] if m["direction"] == "outbound"]
    assert [addresses(m["cc"]) for m in outbound] == [
        ["bob@customer.example", "carol@customer.example"],
        ["carol@customer.example"],
    ]
    assert bot.stop() == 0


def test_copies_can_be_switched_off(daemon, sink: Sink) -> None:  # type: ignore[no-untyped-def]
    bot = daemon({"acknowledgement": {"cc_participants": False}})
    send(bot.port, make_mail("Printer on fire", cc="bob@customer.example"))
    ack = sink.wait_for(1)[0]
    assert ack.rcpt_tos == ["alice@customer.example"]
    assert ack.message["Cc"] is None
    participants = cli_json(bot.config_path, "tickets", "show", "SUP-1001")["participants"]
    assert [p["address"] for p in participants] == [
        "alice@customer.example",
        "bob@customer.example",
    ]
    assert bot.stop() == 0
