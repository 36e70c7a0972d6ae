"""Participants, copies (Cc) and forwarded mail.  Pure."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from support.mail import make_mail

from mailbot.message import parse
from mailbot.pipeline.forwarded import is_forward
from mailbot.pipeline.participants import (
    MAX_NEW_PER_MESSAGE,
    Seen,
    cc_recipients,
    participants_of,
)
from mailbot.pipeline.severity import Severity
from mailbot.pipeline.staff import StaffPolicy
from mailbot.pipeline.threading_rules import TicketView, match_ticket, reference_pattern

OWN = frozenset({"support@example.com", "help@example.com"})
STAFF = StaffPolicy(domains=frozenset({"example.com"}))


def seen(raw: bytes, requester: str | None = "alice@customer.example", automatic: bool = False):  # type: ignore[no-untyped-def]
    return participants_of(
        parse(raw), requester=requester, own_addresses=OWN, staff=STAFF, automatic=automatic
    )


def test_requester_plus_to_and_cc_minus_our_own_addresses() -> None:
    raw = make_mail(
        to="Support <support@example.com>, Bob <Bob@Customer.example>",
        cc="help@example.com, carol@customer.example, dave@example.com",
        headers={"Reply-To": "mallory@evil.example"},
    )
    assert seen(raw) == (
        Seen("alice@customer.example", "requester"),
        Seen("bob@customer.example", "cc"),
        Seen("carol@customer.example", "cc"),
        Seen("dave@example.com", "staff"),
    )


def test_reply_to_never_makes_a_participant() -> None:
    raw = make_mail(headers={"Reply-To": "mallory@evil.example"})
    assert [s.address for s in seen(raw)] == ["alice@customer.example"]


def test_automatic_mail_adds_nobody() -> None:
    raw = make_mail(sender="mailer-daemon@customer.example", cc="bob@customer.example")
    assert seen(raw, requester=None, automatic=True) == ()


def test_a_staff_author_is_recorded_as_staff() -> None:
    raw = make_mail(sender="sam@example.com", cc="erin@customer.example")
    assert seen(raw, requester=None) == (
        Seen("sam@example.com", "staff"),
        Seen("erin@customer.example", "cc"),
    )


def test_the_author_of_a_reply_is_recorded() -> None:
    raw = make_mail(sender="Bob@customer.example", to="support@example.com")
    assert seen(raw, requester=None) == (Seen("bob@customer.example", "cc"),)


def test_a_mass_mailing_adds_a_bounded_number() -> None:
    many = ", ".join(f"user{i}@customer.example" for i in range(500))
    assert len(seen(make_mail(cc=many))) == MAX_NEW_PER_MESSAGE


def test_copies_go_to_the_other_non_staff_participants_up_to_the_limit() -> None:
    people = [
        Seen("alice@customer.example", "requester"),
        Seen("bob@customer.example", "cc"),
        Seen("sam@example.com", "staff"),
        Seen("carol@customer.example", "cc"),
        Seen("dave@customer.example", "cc"),
    ]
    assert cc_recipients(people, exclude=["alice@customer.example"], limit=10) == (
        "bob@customer.example",
        "carol@customer.example",
        "dave@customer.example",
    )
    assert cc_recipients(people, exclude=["bob@customer.example"], limit=2) == (
        "alice@customer.example",
        "carol@customer.example",
    )
    assert cc_recipients(people, exclude=[], limit=0) == ()


@pytest.mark.parametrize(
    "subject",
    ["Fwd: Outage", "FW: Outage", "WG: Ausfall", "TR: Panne", "RV: Caída", "[External] Fwd: x"],
)
def test_forward_subjects(subject: str) -> None:
    assert is_forward(subject)


@pytest.mark.parametrize(
    "subject", ["Re: Fwd: Outage", "AW: WG: Ausfall", "Forward planning", "Outage", ""]
)
def test_not_forward_subjects(subject: str) -> None:
    assert not is_forward(subject)


class Lookup:
    """A TicketLookup over a fixed Message-ID → ticket map (a pure helper, not a peer)."""

    def __init__(self, refs: dict[str, TicketView]) -> None:
        self.refs = refs

    def is_duplicate(self, dedup_key: str) -> bool:
        return False

    def ticket_by_number(self, number: int) -> TicketView | None:
        return next((t for t in self.refs.values() if t.number == number), None)

    def ticket_by_message_ids(self, message_ids: Iterable[str]) -> TicketView | None:
        return next((self.refs[m] for m in message_ids if m in self.refs), None)

    def acks_sent_since(self, address: str, seconds: float) -> int:
        return 0


CAROLS = TicketView(7, 1007, "open", Severity.NORMAL, "carol@customer.example")


def test_a_forward_is_not_threaded_by_the_ids_of_the_forwarded_mail() -> None:
    lookup = Lookup({"carol-1@customer.example": CAROLS})
    ref = reference_pattern("SUP")
    forward = make_mail(
        "Fwd: Outage",
        sender="bob@customer.example",
        in_reply_to="carol-1@customer.example",
        references=["carol-1@customer.example"],
    )
    assert match_ticket(parse(forward), lookup, ref) is None
    reply = make_mail("Re: Outage", in_reply_to="carol-1@customer.example")
    assert match_ticket(parse(reply), lookup, ref).ticket == CAROLS  # type: ignore[union-attr]
    # An explicit ticket reference still threads a forward.
    tagged = make_mail("Fwd: [SUP-1007] Outage", in_reply_to="carol-1@customer.example")
    assert match_ticket(parse(tagged), lookup, ref).ticket == CAROLS  # type: ignore[union-attr]
