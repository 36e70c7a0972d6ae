"""A thread entry whose new content is its whole text stores ``text_full = ""`` (half the
bytes written for most new mail); readers (``mailbot.views``) still show the full text.
One with quoted history or a signature keeps its ``text_full``.

In-process ``Application`` + ``drain()``, as in test_threads_store.py, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from support.daemon import base_config, merge
from support.mail import make_mail
from support.servers import Sink, free_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.store.models import ThreadEntry
from mailbot.store.repo import ticket_by_number
from mailbot.views import format_ticket_thread, ticket_detail

pytestmark = pytest.mark.integration

CLIENTS = Path(__file__).parent.parent / "data" / "clients"
HIDDEN_HINT = "--full shows them"


@pytest.fixture
def app(tmp_path: Path, sink: Sink, store_url: str) -> Iterator[Application]:
    config = merge(base_config(tmp_path, free_port(), sink.port), {"database": {"url": store_url}})
    made = Application(parse_settings(config, tmp_path))
    yield made
    made.store.dispose()


def _deliver(app: Application, raw: bytes) -> None:
    app.store_raw_sync("test", "alice@customer.example", ["support@example.com"], raw)
    app.drain()


def _stored(app: Application) -> list[tuple[str, str, str, str]]:
    """(direction, kind, text, text_full) of every thread entry, as the rows hold them."""
    with app.store.read() as session:
        entries = session.execute(select(ThreadEntry).order_by(col(ThreadEntry.id))).scalars()
        return [(e.direction, e.kind, e.text, e.text_full) for e in entries]


def _detail(app: Application, number: int = 1001) -> dict[str, Any]:
    with app.store.read() as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None
        return ticket_detail(session, ticket, app.settings.mailbot.ticket_prefix)


def test_new_mail_with_nothing_cut_stores_no_second_copy(app: Application) -> None:
    body = "Our nightly export fails since Monday.\n\nError: disk full on /srv/export\n"
    _deliver(app, make_mail("Nightly export fails", body=body))

    [(direction, kind, text, text_full), ack] = _stored(app)
    assert (direction, kind) == ("inbound", "mail")
    assert text == body.strip("\n")
    assert text_full == ""  # nothing was cut: no copy of the same text
    assert ack[0] == "outbound" and ack[3] == ""

    [shown, shown_ack] = _detail(app)["messages"]
    assert shown["text"] == shown["text_full"] == body.strip("\n")  # readers get the full text
    assert shown_ack["text_full"] == shown_ack["text"] != ""
    printed = format_ticket_thread(_detail(app))
    assert "Error: disk full on /srv/export" in printed
    assert HIDDEN_HINT not in printed  # nothing is hidden
    assert "Error: disk full on /srv/export" in format_ticket_thread(_detail(app), full=True)


def test_a_reply_with_quoted_history_keeps_its_full_text(app: Application) -> None:
    _deliver(app, make_mail("Nightly export fails", message_id="orig-1@customer.example"))
    _deliver(app, (CLIENTS / "gmail_en.eml").read_bytes())  # a reply quoting our answer

    replies = [row for row in _stored(app) if row[0] == "inbound"][1:]
    [(_, _, text, text_full)] = replies
    expected = (CLIENTS / "gmail_en.expected.txt").read_text(encoding="utf-8").strip("\n")
    assert text == expected
    assert "> please restart the exporter service" in text_full
    assert text_full.replace("\r\n", "\n").strip("\n") != text

    detail = _detail(app)
    [_, shown] = [m for m in detail["messages"] if m["direction"] == "inbound"]
    assert shown["text"] == expected
    assert shown["text_full"] == text_full
    assert HIDDEN_HINT in format_ticket_thread(detail)
    assert "> please restart the exporter service" in format_ticket_thread(detail, full=True)


def test_a_signature_alone_is_enough_to_keep_the_full_text(app: Application) -> None:
    body = "The VPN drops every ten minutes.\n\n-- \nAlice Customer\nCustomer Corp\n"
    _deliver(app, make_mail("VPN drops", body=body))

    [(_, _, text, text_full), _ack] = _stored(app)
    assert text == "The VPN drops every ten minutes."
    assert "Customer Corp" in text_full and "Customer Corp" not in text
    [shown, _] = _detail(app)["messages"]
    assert "Customer Corp" in shown["text_full"]
