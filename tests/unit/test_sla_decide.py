"""Staff replies and paging verdicts in the pure decision core: no database, no sockets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from support.mail import make_mail
from support.security_lookup import SecurityState

from mailbot.message import parse
from mailbot.pipeline.decide import AppendToTicket, NewTicket, Policy, decide
from mailbot.pipeline.paging import PagingPolicy
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.staff import StaffPolicy, has_resolve_marker, strip_resolve_marker
from mailbot.pipeline.threading_rules import TicketView, reference_pattern


@dataclass
class Lookup(SecurityState):  # + the hostile-mail queries (issue 5)
    tickets: dict[int, TicketView] = field(default_factory=dict)
    pages: int = 0
    asked: list[str] = field(default_factory=list)

    def is_duplicate(self, dedup_key: str) -> bool:
        return False

    def ticket_by_number(self, number: int) -> TicketView | None:
        return self.tickets.get(number)

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None:
        return None

    def acks_sent_since(self, address: str, seconds: float) -> int:
        return 0

    def pages_caused_since(self, sender: str, seconds: float) -> int:
        self.asked.append(sender)
        return self.pages


POLICY = Policy(
    own_addresses=frozenset({"support@example.com"}),
    reference=reference_pattern("SUP"),
    staff=StaffPolicy(
        addresses=frozenset({"carol@contractor.example"}),
        domains=frozenset({"example.com"}),
        resolve_marker="[resolved]",
    ),
    paging=PagingPolicy(
        enabled=True,
        allowed_addresses=frozenset({"vip@other.example"}),
        allowed_domains=frozenset({"customer.example"}),
        max_per_sender_per_hour=2,
    ),
)
TICKET = TicketView(
    id=1, number=1001, status="open", severity=Severity.HIGH, requester="alice@customer.example"
)


def lookup_with_ticket(**changes: object) -> Lookup:
    return Lookup(tickets={1001: dataclasses.replace(TICKET, **changes)})


def mail(subject: str, sender: str = "alice@customer.example", **kwargs):  # type: ignore[no-untyped-def]
    return parse(make_mail(subject, sender=sender, **kwargs))


# ---------------------------------------------------------------- paging


def test_emergency_from_an_allowed_domain_pages() -> None:
    decision = decide(mail("[Emergency] Pipeline down"), Lookup(), POLICY)
    assert isinstance(decision, NewTicket)
    assert decision.paging is not None and decision.paging.page
    assert decision.paging.event == "created"
    assert decision.paging.sender == "alice@customer.example"


def test_subdomains_and_listed_addresses_are_allowed() -> None:
    for sender in ("bob@eu.customer.example", "vip@other.example"):
        decision = decide(mail("[Emergency] down", sender=sender), Lookup(), POLICY)
        assert decision.paging is not None and decision.paging.page, sender


def test_emergency_from_an_unlisted_sender_pages_nobody_but_is_still_emergency() -> None:
    decision = decide(
        mail("[Emergency] give me attention", sender="x@evil.example"), Lookup(), POLICY
    )
    assert isinstance(decision, NewTicket)
    assert decision.severity is Severity.EMERGENCY
    assert decision.paging is not None
    assert not decision.paging.page and decision.paging.unauthorised
    assert "x@evil.example is not allowed to page" in decision.note
    # A look-alike domain is not a subdomain.
    decision = decide(mail("[Emergency] x", sender="a@notcustomer.example"), Lookup(), POLICY)
    assert decision.paging is not None and decision.paging.unauthorised


def test_per_sender_page_limit() -> None:
    decision = decide(mail("[Emergency] again"), Lookup(pages=2), POLICY)
    assert decision.paging is not None and decision.paging.status == "rate-limited"
    decision = decide(mail("[Emergency] again"), Lookup(pages=1), POLICY)
    assert decision.paging is not None and decision.paging.page


def test_robots_never_page() -> None:
    bounce = mail("[Emergency] Undeliverable", headers={"Auto-Submitted": "auto-replied"})
    decision = decide(bounce, Lookup(), POLICY)
    assert decision.paging is not None and decision.paging.status == "automatic"


def test_paging_off_when_no_notifier() -> None:
    policy = dataclasses.replace(POLICY, paging=PagingPolicy(enabled=False))
    lookup = Lookup()
    decision = decide(mail("[Emergency] down"), lookup, policy)
    assert decision.paging is not None and decision.paging.status == "off"
    assert lookup.asked == []


def test_only_emergency_pages() -> None:
    for subject in ("[High] slow", "plain question"):
        decision = decide(mail(subject), Lookup(), POLICY)
        assert isinstance(decision, NewTicket) and decision.paging is None


def test_escalation_to_emergency_pages_with_its_own_event() -> None:
    decision = decide(mail("Re: [SUP-1001] [Emergency] now down"), lookup_with_ticket(), POLICY)
    assert isinstance(decision, AppendToTicket)
    assert decision.escalate_to is Severity.EMERGENCY
    assert decision.paging is not None and decision.paging.page
    assert decision.paging.event == "escalated"
    # Already Emergency: no escalation, no second page.
    lookup = lookup_with_ticket(severity=Severity.EMERGENCY)
    decision = decide(mail("Re: [SUP-1001] [Emergency] still down"), lookup, POLICY)
    assert isinstance(decision, AppendToTicket) and decision.paging is None


def test_staff_may_escalate_and_page() -> None:
    decision = decide(
        mail("Re: [SUP-1001] [Emergency] upgrading", sender="dan@example.com"),
        lookup_with_ticket(),
        POLICY,
    )
    assert decision.paging is not None and decision.paging.page


# ---------------------------------------------------------------- staff replies


def test_staff_reply_is_relayed_and_not_acknowledged() -> None:
    decision = decide(
        mail("Re: [SUP-1001] slow", sender="dan@example.com"), lookup_with_ticket(), POLICY
    )
    assert isinstance(decision, AppendToTicket)
    assert decision.staff_reply is not None
    assert decision.staff_reply.author == "dan@example.com"
    assert decision.staff_reply.relay_to == "alice@customer.example"
    assert not decision.staff_reply.resolve
    assert not decision.acknowledge


def test_staff_by_listed_address_and_subdomain() -> None:
    for sender in ("carol@contractor.example", "eve@eu.example.com"):
        decision = decide(mail("Re: [SUP-1001] x", sender=sender), lookup_with_ticket(), POLICY)
        assert isinstance(decision, AppendToTicket) and decision.staff_reply is not None, sender


def test_customer_reply_is_not_a_staff_reply() -> None:
    decision = decide(mail("Re: [SUP-1001] x"), lookup_with_ticket(), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.staff_reply is None


def test_out_of_office_from_staff_is_not_a_response() -> None:
    oof = mail(
        "Re: [SUP-1001] x", sender="dan@example.com", headers={"Auto-Submitted": "auto-replied"}
    )
    decision = decide(oof, lookup_with_ticket(), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.staff_reply is None


def test_staff_reply_that_already_went_to_the_customer_is_not_relayed_again() -> None:
    decision = decide(
        mail("Re: [SUP-1001] x", sender="dan@example.com", cc="alice@customer.example"),
        lookup_with_ticket(),
        POLICY,
    )
    assert decision.staff_reply is not None and decision.staff_reply.relay_to is None


def test_staff_reply_to_a_resolved_ticket_does_not_reopen_it() -> None:
    decision = decide(
        mail("Re: [SUP-1001] one more thing", sender="dan@example.com"),
        lookup_with_ticket(status="resolved"),
        POLICY,
    )
    assert isinstance(decision, AppendToTicket) and not decision.reopen
    customer = decide(
        mail("Re: [SUP-1001] it broke again"), lookup_with_ticket(status="resolved"), POLICY
    )
    assert isinstance(customer, AppendToTicket) and customer.reopen


def test_resolve_marker_in_subject_or_alone_on_a_line() -> None:
    in_subject = mail("Re: [SUP-1001] fixed [Resolved]", sender="dan@example.com")
    decision = decide(in_subject, lookup_with_ticket(), POLICY)
    assert decision.staff_reply is not None and decision.staff_reply.resolve
    on_a_line = mail("Re: [SUP-1001] fixed", sender="dan@example.com", body="Done.\n[resolved]\n")
    assert has_resolve_marker(on_a_line, "[resolved]")
    quoted = mail("Re: x", sender="dan@example.com", body="Hi\n> [resolved]\n")
    assert not has_resolve_marker(quoted, "[resolved]")
    in_a_sentence = mail("Re: x", sender="dan@example.com", body="not [resolved] yet\n")
    assert not has_resolve_marker(in_a_sentence, "[resolved]")
    assert not has_resolve_marker(in_subject, "")


def test_marker_is_removed_from_what_the_customer_reads() -> None:
    assert strip_resolve_marker("Re: [SUP-1001] fixed [RESOLVED]", "[resolved]") == (
        "Re: [SUP-1001] fixed"
    )
    assert strip_resolve_marker("Fixed.\n  [resolved]\nBye\n", "[resolved]", multiline=True) == (
        "Fixed.\n\nBye\n"
    )
