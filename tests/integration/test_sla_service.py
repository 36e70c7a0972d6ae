"""Service levels in-process: real SQLite, a real SMTP sink, an injected clock, app.drain()."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from support.daemon import base_config, cli_json, merge, run_cli, write_config
from support.mail import make_mail, message_id_of
from support.servers import Sink, free_port

from mailbot.app import Application
from mailbot.config import load_settings
from mailbot.store.models import OutboxMessage, Ticket
from mailbot.views import ticket_summary

pytestmark = pytest.mark.integration

PT = ZoneInfo("America/Los_Angeles")
STAFF = {"staff": {"domains": ["example.com"], "addresses": ["carol@contractor.example"]}}
TEAM = "team@example.com"
ONCALL = "oncall@example.com"


def pt(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    local = datetime(year, month, day, hour, minute, tzinfo=PT)
    return local.astimezone(UTC).replace(tzinfo=None)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def service(tmp_path: Path, sink: Sink):  # type: ignore[no-untyped-def]
    """``service(overrides, start) -> (app, clock, config path)``; the file is for the CLI."""
    built: list[Application] = []

    def _build(overrides: dict | None = None, start: datetime | None = None):  # type: ignore[no-untyped-def]
        config = merge(base_config(tmp_path, free_port(), sink.port), overrides or {})
        path = write_config(tmp_path, config)
        clock = Clock(start or pt(2025, 11, 29, 14))
        app = Application(load_settings(path), clock=clock)
        built.append(app)
        return app, clock, path

    yield _build
    for app in built:
        app.store.dispose()


def with_file(raw: bytes, filename: str, content: bytes) -> bytes:
    msg = message_from_bytes(raw, policy=default)
    msg.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes()


def deliver(app: Application, raw: bytes, sender: str = "alice@customer.example") -> None:
    app.store_raw_sync("test", sender, ["support@example.com"], raw)
    app.drain()


def ticket(app: Application, number: int = 1001) -> Ticket:
    with app.store.transaction() as session:
        found = session.execute(select(Ticket).where(Ticket.number == number)).scalars().one()
        session.expunge(found)
        return found


def outbox(app: Application, kind: str) -> list[OutboxMessage]:
    with app.store.transaction() as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.kind == kind)).scalars()
        return list(rows)


# ---------------------------------------------------------------- due times and the ack


def test_the_acknowledgement_states_the_due_time_in_the_customers_terms(
    service, sink: Sink
) -> None:
    app, _, path = service()  # Saturday 2025-11-29 14:00 PT
    deliver(app, make_mail("[High] Reports are slow"))
    (ack,) = sink.wait_for(1)
    assert "We will respond by 10:00 AM PT on Monday, December 1" in ack.text()
    assert "within 4 business hours" in ack.text()
    html = ack.message.get_body(preferencelist=("html",))
    assert html is not None and "10:00 AM PT on Monday, December 1" in html.get_content()

    (listed,) = cli_json(path, "tickets", "list")
    assert listed["first_response_due"] == "2025-12-01T18:00:00Z"  # 10:00 PST
    assert listed["first_response_at"] is None
    assert listed["next_update_due"] == "2025-12-02T02:00:00Z"  # all of Monday, to 18:00 PT
    assert listed["breached"] is True  # the CLI's clock is the real one, long after 2025
    shown = cli_json(path, "tickets", "show", "SUP-1001")
    assert shown["first_response_due"] == listed["first_response_due"]
    assert shown["pages"] == []


def test_escalation_brings_the_due_time_forward(service) -> None:  # type: ignore[no-untyped-def]
    app, clock, _ = service(start=pt(2025, 12, 1, 9))  # Monday 09:00
    deliver(app, make_mail("Question about exports"))
    normal_due = ticket(app).first_response_due
    assert normal_due == pt(2025, 12, 2, 9)  # 9h Monday + 3h Tuesday
    clock.advance(minutes=30)
    deliver(app, make_mail("Re: [SUP-1001] [High] now it blocks us"))
    assert ticket(app).first_response_due == pt(2025, 12, 1, 13, 30)


# ---------------------------------------------------------------- staff replies


def test_a_staff_reply_reaches_the_customer_and_stops_the_first_response_clock(
    service, sink: Sink
) -> None:
    app, clock, path = service(merge(STAFF, {"reminders": {"team_address": TEAM}}))
    customer = make_mail("[High] Reports are slow", body="Since this morning.\n")
    deliver(app, customer)
    (ack,) = sink.wait_for(1)
    ack_id = message_id_of(ack.raw)

    clock.advance(hours=1)
    reply = make_mail(
        "Re: [SUP-1001] Reports are slow",
        sender="dan@example.com",
        sender_name="Dan Engineer",
        body="We found the slow query and are deploying a fix.\n",
        in_reply_to=ack_id,
        references=[message_id_of(customer), ack_id],
    )
    deliver(
        app, with_file(reply, "fix-plan.pdf", b"%PDF-1.4 \x00\xff plan"), sender="dan@example.com"
    )
    received = sink.wait_for(2)
    relay = received[1]
    assert relay.rcpt_tos == ["alice@customer.example"]
    msg = relay.message
    assert "support@example.com" in msg["From"] and "Dan Engineer" in msg["From"]
    assert "[SUP-1001]" in msg["Subject"]
    assert msg["Auto-Submitted"] is None
    assert msg["In-Reply-To"].strip("<>") == ack_id
    assert "deploying a fix" in relay.text()
    (attached,) = list(msg.iter_attachments())
    assert attached.get_filename() == "fix-plan.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == b"%PDF-1.4 \x00\xff plan"
    assert not sink.to("dan@example.com")  # staff replies are not acknowledged

    saved = ticket(app)
    assert saved.first_response_at == clock.now
    assert saved.next_update_due == pt(2025, 12, 1, 18)  # one business day: all of Monday
    assert ticket_summary(saved, 0, "SUP", clock.now)["breached"] is False
    detail = cli_json(path, "tickets", "show", "SUP-1001")
    assert detail["first_response_at"] == "2025-11-29T23:00:00Z"
    kinds = [(m["direction"], m["kind"]) for m in detail["messages"]]
    assert kinds == [
        ("inbound", "mail"),
        ("outbound", "ack"),
        ("inbound", "staff"),
        ("outbound", "relay"),
    ]
    # The clock stopped: at the due time no first-response reminder goes out.
    clock.now = saved.first_response_due + timedelta(minutes=1)  # type: ignore[operator]
    assert app.reminders.sweep() == 0

    # The customer answers the relay: it threads into the same ticket.
    relay_id = message_id_of(relay.raw)
    deliver(app, make_mail("Re: Reports are slow", in_reply_to=relay_id))
    assert [t["ref"] for t in cli_json(path, "tickets", "list")] == ["SUP-1001"]


def test_a_staff_reply_with_the_marker_resolves_the_ticket(service, sink: Sink) -> None:
    app, clock, path = service(STAFF)
    deliver(app, make_mail("[Emergency] Site down"))
    clock.advance(minutes=20)
    deliver(
        app,
        make_mail(
            "Re: [SUP-1001] Site down [resolved]",
            sender="dan@example.com",
            body="Back up; root cause was a full disk.\n[resolved]\n",
        ),
        sender="dan@example.com",
    )
    relay = sink.wait_for(2)[1]
    assert "[resolved]" not in relay.message["Subject"]
    assert "[resolved]" not in relay.text() and "full disk" in relay.text()
    detail = cli_json(path, "tickets", "show", "SUP-1001")
    assert detail["status"] == "resolved"
    assert detail["next_update_due"] is None
    assert detail["breached"] is False
    assert "resolved" in [e["kind"] for e in detail["events"]]


def test_tickets_resolve_stops_the_clocks(service) -> None:  # type: ignore[no-untyped-def]
    app, clock, path = service({"reminders": {"team_address": TEAM}})
    deliver(app, make_mail("[High] slow"))
    result = run_cli(path, "tickets", "resolve", "SUP-1001", "--note", "duplicate of SUP-999")
    assert result.returncode == 0, result.stderr
    assert "SUP-1001 resolved" in result.stdout
    again = run_cli(path, "tickets", "resolve", "SUP-1001", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
    assert run_cli(path, "tickets", "resolve", "SUP-4242").returncode == 66
    detail = cli_json(path, "tickets", "show", "SUP-1001")
    assert detail["status"] == "resolved" and detail["next_update_due"] is None
    assert detail["events"][-1]["detail"].endswith("duplicate of SUP-999")
    clock.advance(days=10)
    assert app.reminders.sweep() == 0


# ---------------------------------------------------------------- paging guard


def test_an_emergency_from_an_unlisted_sender_pages_nobody(
    service, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    app, _, path = service(
        {"paging": {"oncall_address": ONCALL, "allowed_domains": ["customer.example"]}}
    )
    with caplog.at_level(logging.WARNING, logger="mailbot.paging"):
        deliver(
            app,
            make_mail("[Emergency] notice me", sender="mallory@elsewhere.example"),
            sender="mallory@elsewhere.example",
        )
    assert outbox(app, "page") == []
    assert sink.to(ONCALL) == []
    (ack,) = sink.wait_for(1)
    assert "paged" not in ack.text()
    detail = cli_json(path, "tickets", "show", "SUP-1001")
    assert detail["severity"] == "emergency"
    assert detail["emergency_unauthorised"] is True
    assert detail["page_status"] == "unauthorised"
    assert "mallory@elsewhere.example is not allowed to page" in caplog.text
    assert "pages nobody" in caplog.text
    text = run_cli(path, "tickets", "show", "SUP-1001").stdout
    assert "not allowed to page" in text


def test_an_allowed_emergency_pages_on_call_by_mail(service, sink: Sink) -> None:
    app, _, path = service(
        {"paging": {"oncall_address": ONCALL, "allowed_domains": ["customer.example"]}}
    )
    deliver(app, make_mail("[Emergency] Pipeline down", body="All jobs fail.\n"))
    received = sink.wait_for(2)
    (page,) = sink.to(ONCALL)
    assert page.message["Subject"].startswith("PAGE SUP-1001:")
    assert "[SUP-1001]" not in page.message["Subject"]  # replies must not reach the customer
    assert "All jobs fail." in page.text()
    (ack,) = [r for r in received if r.rcpt_tos == ["alice@customer.example"]]
    assert "on-call engineer has been paged" in ack.text()
    assert "We will respond by 3:00 PM PT on Saturday, November 29" in ack.text()
    (row,) = outbox(app, "page")
    assert row.channel == "mail" and row.status == "sent"
    assert row.message_id.startswith("page-SUP-1001-created-mail-")


def test_escalation_pages_once_and_the_sender_limit_holds(service, sink: Sink) -> None:
    app, clock, path = service(
        {
            "paging": {
                "oncall_address": ONCALL,
                "allowed_domains": ["customer.example"],
                "max_pages_per_sender_per_hour": 1,
            }
        }
    )
    deliver(app, make_mail("[High] slow"))
    deliver(app, make_mail("Re: [SUP-1001] [Emergency] now down"))
    deliver(app, make_mail("Re: [SUP-1001] [Emergency] still down"))
    assert [r.message_id.split("-mail-")[0] for r in outbox(app, "page")] == [
        "page-SUP-1001-escalated"
    ]
    # A second Emergency ticket within the hour: over the per-sender limit.
    deliver(app, make_mail("[Emergency] another thing"))
    assert ticket(app, 1002).page_status == "rate-limited"
    assert len(outbox(app, "page")) == 1
    clock.advance(minutes=61)
    deliver(app, make_mail("[Emergency] a third thing"))
    assert ticket(app, 1003).page_status == "queued"
    assert len(sink.to(ONCALL)) == 2


# ---------------------------------------------------------------- reminders


def test_reminders_once_per_due_time(service, sink: Sink) -> None:
    app, clock, path = service(
        merge(
            STAFF,
            {
                "reminders": {"team_address": TEAM},
                "paging": {"oncall_address": ONCALL, "allowed_domains": ["customer.example"]},
            },
        ),
        start=pt(2025, 11, 30, 3),  # Sunday 03:00
    )
    deliver(app, make_mail("[Emergency] Site down"))
    deliver(
        app,
        make_mail("[High] Reports slow", sender="bob@customer.example"),
        sender="bob@customer.example",
    )
    base = len(sink.received)
    assert app.reminders.sweep() == 0  # nothing due yet

    clock.now = pt(2025, 11, 30, 4, 1)  # Emergency first response (04:00) missed
    assert app.reminders.sweep() == 1
    assert app.reminders.sweep() == 0  # once per due time
    app.drain()
    (reminder,) = sink.received[base:]
    assert sorted(reminder.rcpt_tos) == sorted([TEAM, ONCALL])
    assert "SUP-1001" in reminder.message["Subject"]
    assert "first response overdue" in reminder.message["Subject"]

    clock.now = pt(2025, 11, 30, 5, 30)  # no answer for another cadence: remind again
    assert app.reminders.sweep() == 1
    assert app.reminders.sweep() == 0

    # Staff answer the Emergency: its clock moves on an hour.
    deliver(
        app, make_mail("Re: [SUP-1001] looking", sender="dan@example.com"), sender="dan@example.com"
    )
    assert app.reminders.sweep() == 0
    clock.now = pt(2025, 11, 30, 6, 31)
    assert app.reminders.sweep() == 1  # status update overdue (due 06:30)
    app.drain()
    update = sink.received[-1]
    assert "status update overdue" in update.message["Subject"]

    # Monday 10:00 PT: the High ticket (due 10:00) is past due, to the team only.
    clock.now = pt(2025, 12, 1, 10) + timedelta(seconds=1)
    swept = app.reminders.sweep()
    app.drain()
    high = [r for r in sink.received if r.message["Subject"].startswith("Reminder SUP-1002")]
    assert len(high) == 1 and high[0].rcpt_tos == [TEAM]
    assert swept == 2  # and SUP-1001's hourly cadence, still unanswered since 06:30
    detail = cli_json(path, "tickets", "show", "SUP-1002")
    assert [e["kind"] for e in detail["events"]] == ["reminder"]


def test_no_reminders_without_recipients(service) -> None:  # type: ignore[no-untyped-def]
    app, clock, _ = service()
    assert not app.sla.reminders_enabled
    deliver(app, make_mail("[Emergency] down"))
    clock.advance(days=1)
    assert app.reminders.sweep() == 0
