"""IMAP intake in-process against a real Dovecot: one sweep at a time, deterministic.

Each test builds the real Application on a temp SQLite file, appends real messages to
Dovecot over IMAP, runs ``ImapIntake.run_once()`` (connect, sweep, disconnect) and then
``app.drain()`` to turn the stored mail into tickets and acknowledgements.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from support.dovecot import (
    PASSWORD,
    PASSWORD_ENV,
    USER,
    Dovecot,
    imap_section,
    running_dovecot,
    unavailable_reason,
)
from support.mail import make_mail, message_id_of
from support.servers import free_port

from mailbot.intake.imap import ImapError, ImapIntake, check_imap
from mailbot.intake.imap_conn import close, connect
from mailbot.intake.imap_sweep import Mailbox, Sweep
from mailbot.store.models import InboundMessage
from mailbot.store.repo import tickets_with_counts

pytestmark = pytest.mark.integration

PROCESSED = "mailbot-processed"
QUARANTINE = "mailbot-quarantine"
# Dovecot's capabilities minus MOVE (and minus UIDPLUS too), to exercise the fallbacks.
CAPS_NO_MOVE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS LITERAL+ NAMESPACE"
CAPS_NO_MOVE_NO_UIDPLUS = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE"


@pytest.fixture(autouse=True)
def imap_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture
def make_app(app, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``make_app(server=dovecot, **imap) -> Application`` reading ``server``'s INBOX."""

    def _make(server: Dovecot | None = None, **imap: object):  # type: ignore[no-untyped-def]
        server = server or request.getfixturevalue("dovecot")
        return app({"intake": {"imap": imap_section(server, **imap)}})

    return _make


def limited_dovecot(capability: str) -> Iterator[Dovecot]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_dovecot(capability=capability) as server:
        yield server


@pytest.fixture
def dovecot_no_move() -> Iterator[Dovecot]:
    yield from limited_dovecot(CAPS_NO_MOVE)


@pytest.fixture
def dovecot_no_move_no_uidplus() -> Iterator[Dovecot]:
    yield from limited_dovecot(CAPS_NO_MOVE_NO_UIDPLUS)


def intake_for(application) -> ImapIntake:  # type: ignore[no-untyped-def]
    return ImapIntake.from_settings(application.settings, application.store, application.clock)


def subjects(application) -> list[str]:  # type: ignore[no-untyped-def]
    with application.store.transaction() as session:
        return sorted(t.subject for t, _ in tickets_with_counts(session))


def inbound_count(application) -> int:  # type: ignore[no-untyped-def]
    with application.store.transaction() as session:
        return int(session.execute(select(func.count()).select_from(InboundMessage)).scalar_one())


class Crash(Exception):
    """Stands for the process dying right after a commit (before the move)."""


def sweep_and_crash_after_first_commit(application) -> None:  # type: ignore[no-untyped-def]
    """One sweep that stops dead after its first commit (of a group): stored, not moved."""
    intake = intake_for(application)

    def crash() -> None:
        raise Crash

    client = connect(intake.cfg)
    try:
        mailbox = Mailbox(client, intake.cfg)
        mailbox.ensure_folders()
        uidvalidity, _ = mailbox.select()
        sweep = Sweep(
            mailbox,
            uidvalidity,
            intake.store,
            on_stored=lambda: None,
            after_commit=crash,
            log=logging.getLogger("test"),
        )
        with pytest.raises(Crash):
            sweep.run()
    finally:
        close(client)


# ---------------------------------------------------------------- taking mail


def test_read_and_unread_mail_becomes_tickets_and_is_moved(make_app, dovecot, sink) -> None:
    application = make_app()
    dovecot.append(make_mail("[High] opened in Outlook already"), flags=[b"\\Seen"])
    dovecot.append(make_mail("Not read yet", sender="bob@customer.example"))

    result = intake_for(application).run_once()
    application.drain()

    assert (result.stored, result.quarantined) == (2, 0)
    assert subjects(application) == ["Not read yet", "opened in Outlook already"]
    assert dovecot.count("INBOX") == 0
    assert dovecot.count(PROCESSED) == 2
    assert sorted(r.rcpt_tos[0] for r in sink.wait_for(2)) == [
        "alice@customer.example",
        "bob@customer.example",
    ]
    # BODY.PEEK: mailbot does not mark the unread message as read.
    assert sorted(b"\\Seen" in f for f in dovecot.flags(PROCESSED).values()) == [False, True]


def test_a_bounce_keeps_its_null_return_path_and_is_not_acknowledged(
    make_app, dovecot, sink
) -> None:
    application = make_app()
    bounce = b"Return-Path: <>\r\n" + make_mail("Undeliverable: your message")
    dovecot.append(bounce)
    intake_for(application).run_once()
    application.drain()
    with application.store.transaction() as session:
        row = session.execute(select(InboundMessage)).scalars().one()
        assert (row.source, row.mail_from) == ("imap", "")
        assert row.origin is not None and ";UID=1" in row.origin
        # A bounce about no mail of ours is ignored with its reason: never a ticket.
        assert row.outcome == "ignored" and "bounce" in (row.reason or "")
    assert subjects(application) == []
    assert sink.received == []


def test_oversize_goes_to_quarantine_and_the_rest_of_the_batch_goes_on(
    make_app, dovecot, caplog
) -> None:
    application = make_app(max_message_size=20_000, batch_size=2)
    big = make_mail("Huge log attached", body="x" * 50_000)
    dovecot.append(make_mail("Before"))
    dovecot.append(big)
    dovecot.append(make_mail("After"))

    with caplog.at_level(logging.ERROR, logger="mailbot.intake.imap"):
        result = intake_for(application).run_once()
    application.drain()

    assert (result.stored, result.quarantined) == (2, 1)
    assert subjects(application) == ["After", "Before"]
    assert inbound_count(application) == 2
    assert list(dovecot.messages(QUARANTINE).values()) == [big]  # intact, not deleted
    assert dovecot.count("INBOX") == 0
    assert "over max_message_size (20000)" in caplog.text


def test_an_unfetchable_message_is_quarantined_and_the_others_are_taken(
    make_app, dovecot, caplog
) -> None:
    application = make_app()
    dovecot.append(make_mail("Fine one"))
    dovecot.append(make_mail("Broken on disk"))
    dovecot.append(make_mail("Fine two"))
    maildir = dovecot.root / "mail" / USER
    (broken,) = [p for p in maildir.glob("*/*") if b"Broken on disk" in p.read_bytes()]
    os.chmod(broken, 0)  # Dovecot can no longer read it: FETCH fails, connection drops

    intake = intake_for(application)
    failures = 0
    with caplog.at_level(logging.ERROR, logger="mailbot.intake.imap"):
        for _ in range(6):  # bounded: each pass either fails or makes progress
            if dovecot.count(QUARANTINE):
                break
            try:
                intake.run_once()
            except Exception:  # the server hung up on the FETCH, as it does in production
                failures += 1
    application.drain()

    # The group fetch failed, then the broken one alone twice; the others went on.
    assert failures == 3
    assert inbound_count(application) == 2
    assert subjects(application) == ["Fine one", "Fine two"]
    assert dovecot.count(QUARANTINE) == 1
    assert dovecot.count("INBOX") == 0
    assert "fetch failed 2 times" in caplog.text


# ---------------------------------------------------------------- nothing doubled


def test_stored_but_not_moved_is_only_moved_next_time(make_app, dovecot, sink) -> None:
    application = make_app()
    first = make_mail("Crashed before the move")
    dovecot.append(first)
    sweep_and_crash_after_first_commit(application)
    assert inbound_count(application) == 1
    assert dovecot.count("INBOX") == 1  # not moved: the crash came first
    dovecot.append(make_mail("Second, untouched"))

    result = intake_for(application).run_once()
    application.drain()

    assert (result.stored, result.already) == (1, 1)
    assert inbound_count(application) == 2
    assert subjects(application) == ["Crashed before the move", "Second, untouched"]
    assert dovecot.count("INBOX") == 0
    assert dovecot.count(PROCESSED) == 2
    acks = sink.wait_for(2)
    assert sorted(r.message["In-Reply-To"] for r in acks).count(f"<{message_id_of(first)}>") == 1


def test_uidvalidity_change_resynchronises_without_reticketing(make_app, dovecot, caplog) -> None:
    application = make_app()
    intake = intake_for(application)
    intake.run_once()  # learns the UIDVALIDITY
    old = intake.uidvalidity
    assert old is not None
    dovecot.append(make_mail("Stored before the index was rebuilt"))
    sweep_and_crash_after_first_commit(application)

    dovecot.set_uidvalidity(old + 1000)
    dovecot.append(make_mail("Arrived after the change"))
    with caplog.at_level(logging.INFO, logger="mailbot.intake.imap"):
        result = intake.run_once()
    application.drain()

    assert intake.uidvalidity == old + 1000
    assert f"UIDVALIDITY of INBOX changed from {old} to {old + 1000}" in caplog.text
    assert (result.stored, result.already) == (1, 1)
    assert "already stored" in caplog.text and "same bytes" in caplog.text
    assert inbound_count(application) == 2
    assert subjects(application) == [
        "Arrived after the change",
        "Stored before the index was rebuilt",
    ]
    assert dovecot.count("INBOX") == 0


# ---------------------------------------------------------------- servers without MOVE


def test_without_move_copy_then_expunge_only_our_uids(make_app, dovecot_no_move) -> None:
    application = make_app(server=dovecot_no_move)
    person_deleted = make_mail("Deleted by a person, not yet expunged")
    dovecot_no_move.append(person_deleted, flags=[b"\\Deleted"])
    dovecot_no_move.append(make_mail("Take me"))

    result = intake_for(application).run_once()
    application.drain()

    assert result.stored == 1
    assert subjects(application) == ["Take me"]
    assert dovecot_no_move.count(PROCESSED) == 1
    # Our UID was expunged; the person's \Deleted message was not (no bare EXPUNGE).
    assert list(dovecot_no_move.messages("INBOX").values()) == [person_deleted]


def test_without_uidplus_copies_stay_flagged_deleted_and_are_not_taken_twice(
    make_app, dovecot_no_move_no_uidplus
) -> None:
    server = dovecot_no_move_no_uidplus
    application = make_app(server=server)
    server.append(make_mail("Only COPY here"))

    intake = intake_for(application)
    first = intake.run_once()
    second = intake.run_once()
    application.drain()

    assert (first.stored, second.seen) == (1, 0)
    assert subjects(application) == ["Only COPY here"]
    assert server.count(PROCESSED) == 1
    assert [b"\\Deleted" in flags for flags in server.flags("INBOX").values()] == [True]


# ---------------------------------------------------------------- check_imap


def test_check_reports_folder_and_count(make_app, dovecot) -> None:
    application = make_app()
    dovecot.append(make_mail("one"))
    dovecot.append(make_mail("two"))
    line = check_imap(application.settings)
    assert "folder 'INBOX': 2 message(s)" in line
    assert "IDLE, MOVE, UIDPLUS" in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("imap", "needle"),
    [
        ({"folder": "Nope"}, "no such folder 'Nope'"),
        ({"tls": "implicit"}, "TLS failure"),
        ({"tls": "starttls"}, "does not offer STARTTLS"),
        ({"username": "nobody@example.com"}, "login refused"),
    ],
)
def test_check_names_the_problem(make_app, imap: dict, needle: str) -> None:
    with pytest.raises(ImapError, match=needle):
        check_imap(make_app(**imap).settings)


def test_check_bad_password_and_closed_port(make_app, monkeypatch) -> None:
    application = make_app()
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(ImapError, match="login refused"):
        check_imap(application.settings)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with pytest.raises(ImapError, match="connection refused"):
        check_imap(make_app(port=free_port()).settings)


# ---------------------------------------------------------------- TLS


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_dovecot(tls=True) as server:
        yield server


def test_tls_certificates_are_verified_unless_told_not_to(make_app, dovecot_tls) -> None:
    server = dovecot_tls
    implicit = {"server": server, "port": server.tls_port, "tls": "implicit"}

    with pytest.raises(ImapError, match="certificate not trusted"):  # self-signed
        check_imap(make_app(**implicit, host="localhost").settings)
    with pytest.raises(ImapError, match="certificate not trusted"):  # name mismatch
        check_imap(make_app(**implicit, ca_file=str(server.cert_path)).settings)

    trusted = make_app(**implicit, host="localhost", ca_file=str(server.cert_path))
    assert "folder 'INBOX'" in check_imap(trusted.settings)
    unverified = make_app(**implicit, verify_certificates=False)
    assert "folder 'INBOX'" in check_imap(unverified.settings)


def test_starttls_sweep_with_a_private_ca(make_app, dovecot_tls) -> None:
    server = dovecot_tls
    application = make_app(
        server=server, tls="starttls", host="localhost", ca_file=str(server.cert_path)
    )
    server.append(make_mail("Over STARTTLS"))
    assert intake_for(application).run_once().stored == 1
    application.drain()
    assert subjects(application) == ["Over STARTTLS"]
