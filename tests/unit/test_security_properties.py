"""Property tests: random MIME trees and header values through limits → parse → classify →
thread → decide.  Nothing raises, and every decision is one of the four outcomes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.mime_strategies import messages
from support.security_lookup import SecurityState

from mailbot.message import parse
from mailbot.outbound.reply_token import ReplyTokens
from mailbot.pipeline.authenticity import sender_authenticity, strip_internal_headers
from mailbot.pipeline.automatic import automatic_reason
from mailbot.pipeline.bounces import AttachBounce
from mailbot.pipeline.decide import AppendToTicket, IgnoreMessage, NewTicket, Policy, decide
from mailbot.pipeline.limits import Limits, check_parsed, scan
from mailbot.pipeline.screen import screen
from mailbot.pipeline.security import QuarantineMessage, SecurityPolicy
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import TicketView, reference_pattern

TOKENS = ReplyTokens(b"property-test-secret-0123456789")
TICKET = TicketView(
    id=1, number=1001, status="open", severity=Severity.NORMAL, requester="alice@customer.example"
)
POLICY = Policy(
    own_addresses=frozenset({"support@example.com"}),
    reference=reference_pattern("SUP"),
    security=SecurityPolicy(tokens=TOKENS, authserv_id="mx.example.com"),
)
OUTCOME = {
    NewTicket: "created",
    AppendToTicket: "appended",
    AttachBounce: "appended",
    IgnoreMessage: "ignored",
    QuarantineMessage: "quarantined",
}


class Lookup(SecurityState):
    def is_duplicate(self, dedup_key: str) -> bool:
        return False

    def ticket_by_number(self, number: int) -> TicketView | None:
        return TICKET if number == 1001 else None

    def ticket_by_message_ids(self, message_ids) -> TicketView | None:  # type: ignore[no-untyped-def]
        return TICKET if "bob@customer.example" in message_ids else None

    def acks_sent_since(self, address: str, seconds: float) -> int:
        return 0

    def pages_caused_since(self, sender: str, seconds: float) -> int:
        return 0


def outcome(raw: bytes) -> str:
    over = scan(raw, Limits())
    if over is not None:
        return "quarantined"
    mail = strip_internal_headers(parse(raw, envelope_from=""))
    if check_parsed(mail, Limits()) is not None:
        return "quarantined"
    automatic_reason(mail, POLICY.own_addresses)
    sender_authenticity(mail, "mx.example.com")
    lookup = Lookup()
    decision = screen(mail, raw, lookup, POLICY) or decide(mail, lookup, POLICY)
    return OUTCOME[type(decision)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_any_message_gets_exactly_one_of_the_four_outcomes(raw: bytes) -> None:
    assert outcome(raw) in {"created", "appended", "ignored", "quarantined"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3))
def test_the_limit_scan_is_monotone(raw: bytes, parts: int, depth: int, files: int) -> None:
    """Within some limits means within every looser limits (and the scan never raises)."""
    tight = Limits(max_mime_parts=parts, max_mime_depth=depth, max_attachments=files)
    loose = Limits(max_mime_parts=parts + 5, max_mime_depth=depth + 2, max_attachments=files + 3)
    if scan(raw, tight) is None:
        assert scan(raw, loose) is None
        assert scan(raw, Limits()) is None
