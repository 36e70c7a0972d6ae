"""The decision core against an in-memory lookup: no database, no sockets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from support.security_lookup import SecurityState

from mailbot.message import parse
from mailbot.pipeline.decide import AppendToTicket, IgnoreMessage, NewTicket, Policy, decide
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.threading_rules import TicketView, reference_pattern

DATA = Path(__file__).parent.parent / "data" / "eml"


@dataclass
class MemoryLookup(SecurityState):  # + the hostile-mail queries (issue 5)
    tickets: dict[int, TicketView] = field(default_factory=dict)
    refs: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    acks: int = 0

    def is_duplicate(self, dedup_key: str) -> bool:
        return dedup_key in self.seen

    def ticket_by_number(self, number: int) -> TicketView | None:
        return self.tickets.get(number)

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None:
        for mid in message_ids:
            if mid in self.refs:
                return self.tickets[self.refs[mid]]
        return None

    def acks_sent_since(self, address: str, seconds: float) -> int:
        return self.acks


POLICY = Policy(
    own_addresses=frozenset({"support@example.com"}), reference=reference_pattern("SUP")
)
# Alice (the fixtures' sender) is the requester: only people on a ticket may append to it.
ALICE = "alice@customer.example"
TICKET = TicketView(id=1, number=1001, status="open", severity=Severity.NORMAL, requester=ALICE)


def mail(name: str, **replace: bytes):  # type: ignore[no-untyped-def]
    raw = (DATA / name).read_bytes()
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new)
    return parse(raw)


def test_new_emergency_ticket_is_acknowledged() -> None:
    decision = decide(mail("emergency.eml"), MemoryLookup(), POLICY)
    assert isinstance(decision, NewTicket)
    assert decision.severity is Severity.EMERGENCY
    assert decision.title == "Pipeline down"
    assert decision.requester == "alice@customer.example"
    assert decision.acknowledge


def test_duplicate_is_ignored() -> None:
    lookup = MemoryLookup(seen={"mid:em1@customer.example"})
    assert isinstance(decide(mail("emergency.eml"), lookup, POLICY), IgnoreMessage)


def test_reply_by_subject_reference_appends_without_ack() -> None:
    m = mail("emergency.eml", **{"[Emergency] Pipeline down": b"Re: [SUP-1001] Pipeline down"})
    decision = decide(m, MemoryLookup(tickets={1001: TICKET}), POLICY)
    assert isinstance(decision, AppendToTicket)
    assert decision.matched_by == "subject reference"
    assert not decision.acknowledge
    assert decision.escalate_to is None


def test_reply_by_in_reply_to_only_with_changed_subject() -> None:
    lookup = MemoryLookup(tickets={1001: TICKET}, refs={"ack-1@example.com": 1001})
    decision = decide(mail("reply_by_header.eml"), lookup, POLICY)
    assert isinstance(decision, AppendToTicket)
    assert decision.matched_by == "In-Reply-To/References"


def test_unknown_reference_number_opens_a_new_ticket() -> None:
    m = mail("emergency.eml", **{"[Emergency]": b"[SUP-4242]"})
    assert isinstance(decide(m, MemoryLookup(tickets={1001: TICKET}), POLICY), NewTicket)


def test_same_subject_without_reference_never_threads() -> None:
    m = mail("emergency.eml", **{"[Emergency] Pipeline down": b"Pipeline down"})
    lookup = MemoryLookup(tickets={1001: TICKET})  # a ticket titled "Pipeline down" exists
    assert isinstance(decide(m, lookup, POLICY), NewTicket)


def test_higher_tag_escalates_and_lower_never_downgrades() -> None:
    up = mail("emergency.eml", **{"[Emergency] Pipeline down": b"Re: [SUP-1001] [Emergency] worse"})
    decision = decide(up, MemoryLookup(tickets={1001: TICKET}), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.escalate_to is Severity.EMERGENCY
    high = TicketView(id=1, number=1001, status="open", severity=Severity.HIGH, requester=ALICE)
    down = mail("emergency.eml", **{"[Emergency] Pipeline down": b"Re: [SUP-1001] [Low] better"})
    decision = decide(down, MemoryLookup(tickets={1001: high}), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.escalate_to is None


def test_reply_to_resolved_ticket_reopens() -> None:
    closed = TicketView(
        id=1, number=1001, status="resolved", severity=Severity.LOW, requester=ALICE
    )
    m = mail("emergency.eml", **{"[Emergency] Pipeline down": b"Re: [SUP-1001] again"})
    decision = decide(m, MemoryLookup(tickets={1001: closed}), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.reopen


def test_automatic_mail_gets_a_ticket_but_no_ack() -> None:
    decision = decide(mail("oof_precedence.eml"), MemoryLookup(), POLICY)
    assert isinstance(decision, NewTicket) and not decision.acknowledge
    assert "automatic" in decision.note


def test_per_sender_limit_suppresses_ack() -> None:
    decision = decide(mail("emergency.eml"), MemoryLookup(acks=5), POLICY)
    assert isinstance(decision, NewTicket) and not decision.acknowledge
    assert "limit" in decision.note


def test_acknowledgements_off() -> None:
    import dataclasses

    policy = dataclasses.replace(POLICY, acknowledge=False)
    decision = decide(mail("emergency.eml"), MemoryLookup(), policy)
    assert isinstance(decision, NewTicket) and not decision.acknowledge
