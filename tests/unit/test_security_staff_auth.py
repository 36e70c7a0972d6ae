"""Staff privileges need an authenticated From when an authserv-id is configured."""

from __future__ import annotations

import dataclasses

from support.mail import make_mail
from test_sla_decide import POLICY, TICKET, Lookup

from mailbot.message import parse
from mailbot.pipeline.decide import AppendToTicket, decide
from mailbot.pipeline.security import SecurityPolicy

MX = "mx.example.com"
STRICT = dataclasses.replace(
    POLICY, security=SecurityPolicy(authserv_id=MX, require_auth_for_staff=True)
)


def _staff_reply(auth: str | None):  # type: ignore[no-untyped-def]
    headers = {"Authentication-Results": auth} if auth else {}
    raw = make_mail(
        "Re: [SUP-1001] fixed", sender="bob@example.com", headers=headers, body="Fixed.\n"
    )
    return parse(raw)


def test_forged_staff_address_gets_no_staff_privileges() -> None:
    decision = decide(_staff_reply(None), Lookup(tickets={1001: TICKET}), STRICT)
    assert not (isinstance(decision, AppendToTicket) and decision.staff_reply is not None)


def test_authenticated_staff_reply_is_relayed() -> None:
    auth = f"{MX}; dmarc=pass header.from=example.com"
    decision = decide(_staff_reply(auth), Lookup(tickets={1001: TICKET}), STRICT)
    assert isinstance(decision, AppendToTicket)
    assert decision.staff_reply is not None and decision.staff_reply.relay_to


def test_results_from_another_authserv_id_do_not_count() -> None:
    auth = "evil.example; dmarc=pass header.from=example.com"
    decision = decide(_staff_reply(auth), Lookup(tickets={1001: TICKET}), STRICT)
    assert not (isinstance(decision, AppendToTicket) and decision.staff_reply is not None)


def test_without_the_requirement_the_staff_list_is_trusted() -> None:
    decision = decide(_staff_reply(None), Lookup(tickets={1001: TICKET}), POLICY)
    assert isinstance(decision, AppendToTicket) and decision.staff_reply is not None
