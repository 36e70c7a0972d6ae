"""Pages and reminders are queued once, on SQLite and on PostgreSQL alike.

The "once" rests on unique keys and INSERT … ON CONFLICT DO NOTHING, whose row count
differs between drivers if anything does; so this runs against both databases.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from support.daemon import base_config, merge
from support.mail import make_mail
from support.servers import Sink, free_port

from mailbot.app import Application
from mailbot.config import parse_settings
from mailbot.store.models import OutboxMessage, PageRecord

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(store_url: str) -> str:
    """SQLite and PostgreSQL (a private schema), from tests/support/postgres.py."""
    return store_url


def test_pages_and_reminders_are_queued_once(database_url: str, tmp_path: Path, sink: Sink) -> None:
    config = merge(
        base_config(tmp_path, free_port(), sink.port),
        {
            "database": {"url": database_url},
            "paging": {
                "oncall_address": "oncall@example.com",
                "allowed_domains": ["customer.example"],
            },
            "reminders": {"team_address": "team@example.com"},
        },
    )
    now = datetime(2025, 11, 30, 11, 0)  # Sunday 03:00 PT
    app = Application(parse_settings(config, tmp_path), clock=lambda: now)
    try:
        for subject in (
            "[High] slow",
            "Re: [SUP-1001] [Emergency] down",
            "Re: [SUP-1001] [Emergency] !",
        ):
            app.store_raw_sync(
                "test", "alice@customer.example", ["support@example.com"], make_mail(subject)
            )
            app.drain()
        with app.store.transaction() as session:
            pages = list(session.execute(select(PageRecord)).scalars())
            assert [(p.event, p.sender) for p in pages] == [("escalated", "alice@customer.example")]
        now += timedelta(hours=2)
        assert app.reminders.sweep() == 2  # first response (Emergency, due 04:00) and update
        assert app.reminders.sweep() == 0
        with app.store.transaction() as session:
            kinds = sorted(r.kind for r in session.execute(select(OutboxMessage)).scalars())
        assert kinds == ["ack", "page", "reminder", "reminder"]
    finally:
        app.store.dispose()
