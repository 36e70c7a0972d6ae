"""Authentication-Results (RFC 8601): only our MTA's topmost header counts."""

from __future__ import annotations

import pytest
from support.mail import make_mail

from mailbot.message import parse
from mailbot.pipeline.authenticity import (
    aligned,
    parse_authentication_results,
    sender_authenticity,
    strip_internal_headers,
)
from mailbot.pipeline.gates import page_gate
from mailbot.pipeline.paging import QUEUED, UNAUTHORISED, PageVerdict
from mailbot.pipeline.security import SecurityPolicy

MX = "mx.example.com"


def mail_with(*results: str, sender: str = "alice@customer.example"):  # type: ignore[no-untyped-def]
    raw = make_mail("[Emergency] down", sender=sender)
    head = b"".join(f"Authentication-Results: {r}\r\n".encode() for r in results)
    return parse(head + raw)


def test_parses_methods_properties_and_comments() -> None:
    parsed = parse_authentication_results(
        'mx.example.com 1; dkim=pass (good signature) header.d=customer.example header.s="s1";'
        " spf=pass smtp.mailfrom=bounce@customer.example; dmarc = pass (p=reject) "
        "header.from=customer.example"
    )
    assert parsed is not None and parsed.authserv_id == MX
    assert [(r.method, r.result) for r in parsed.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert parsed.results[0].properties == {"header.d": "customer.example", "header.s": "s1"}


def test_none_and_garbage_parse_to_no_results() -> None:
    assert parse_authentication_results("mx.example.com; none").results == ()  # type: ignore[union-attr]
    assert parse_authentication_results("   ") is None
    assert parse_authentication_results("mx; =;;; x").results == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("results", "authentic"),
    [
        (["mx.example.com; dmarc=pass header.from=customer.example"], True),
        (["mx.example.com; dkim=pass header.d=customer.example"], True),
        (["mx.example.com; dkim=pass header.d=mail.customer.example"], True),
        (["mx.example.com; spf=pass smtp.mailfrom=b@customer.example"], True),
        (["mx.example.com; dkim=pass header.d=attacker.example"], False),
        (["mx.example.com; spf=pass smtp.mailfrom=x@attacker.example"], False),
        (["mx.example.com; dmarc=fail; dkim=fail header.d=customer.example"], False),
        # Someone else's verdict, or ours below a failing one: not believed.
        (["evil.example; dmarc=pass"], False),
        (["mx.example.com; dmarc=fail", "mx.example.com; dmarc=pass"], False),
        (["MX.Example.COM; dmarc=pass"], True),
        ([], False),
    ],
)
def test_only_the_topmost_header_of_our_mta_counts(results: list[str], authentic: bool) -> None:
    assert sender_authenticity(mail_with(*results), MX).authenticated is authentic


def test_without_an_authserv_id_nothing_is_authenticated() -> None:
    mail = mail_with("mx.example.com; dmarc=pass")
    assert not sender_authenticity(mail, "").authenticated


def test_alignment_needs_a_real_domain() -> None:
    assert aligned("customer.example", "eu.customer.example")
    assert not aligned("example", "customer.example")
    assert not aligned("", "customer.example")


def test_page_gate_requires_authentication_only_when_configured() -> None:
    queued = PageVerdict(event="created", status=QUEUED, reason="on-call paged", sender="a@b.c")
    forged = mail_with("evil.example; dmarc=pass")
    strict = SecurityPolicy(authserv_id=MX, require_dmarc_for_paging=True)
    assert page_gate(queued, forged, SecurityPolicy()) is queued
    gated = page_gate(queued, forged, strict)
    assert gated.status == UNAUTHORISED and "require_dmarc_for_paging" in gated.reason
    assert page_gate(queued, mail_with("mx.example.com; dmarc=pass"), strict).page


def test_sender_supplied_mailbot_headers_are_dropped() -> None:
    raw = make_mail("hi", headers={"X-Mailbot-Ticket": "SUP-1", "X-Other": "kept"})
    mail = strip_internal_headers(parse(raw))
    assert "x-mailbot-ticket" not in mail.headers
    assert mail.header("x-other") == "kept"
