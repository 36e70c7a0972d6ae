"""Property test through the real worker: random MIME trees and header values, stored,
processed and applied on SQLite.  Every message gets one of the four outcomes, a
quarantine is only ever a limit (never a traceback), and nobody but the people on
SUP-1001 gets into its thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from support.hostile import OUTCOMES, Harness
from support.mail import make_mail
from support.mime_strategies import messages
from support.servers import Sink

from mailbot.message import parse

pytestmark = pytest.mark.integration

ON_TICKET = {"alice@customer.example", "bob@customer.example"}


def test_random_mail_through_the_worker(tmp_path: Path, sink: Sink) -> None:
    bot = Harness(tmp_path, sink, {"acknowledgement": {"max_per_sender_per_hour": 100000}})
    tokens = bot.app.policy.security.tokens
    assert tokens is not None
    first = make_mail("Export fails", sender="alice@customer.example", cc="bob@customer.example")
    assert bot.deliver(first, "alice@customer.example").ticket == 1001

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(messages())
    def one(raw: bytes) -> None:
        result = bot.deliver(raw, "", send=False)
        assert result.outcome in OUTCOMES
        if result.outcome == "quarantined":
            assert result.reason.startswith("over a limit"), result.reason
        if result.ticket == 1001 and result.outcome == "appended":
            mail = parse(raw)
            assert (
                mail.from_address in ON_TICKET
                or tokens.proves(mail.referenced_ids, 1001)
                or "bounce" in result.reason
                or "report" in result.reason
            ), result.reason

    try:
        one()
    finally:
        bot.close()
