"""Core intake end to end: `mailbot run` as a subprocess, smtplib in, a real aiosmtpd sink out."""

from __future__ import annotations

import smtplib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from support.daemon import cli_json
from support.mail import make_mail, message_id_of, send
from support.servers import Sink

pytestmark = pytest.mark.integration


def tickets(config: Path) -> list[dict]:
    return cli_json(config, "tickets", "list")


def wait_tickets(config: Path, count: int, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = tickets(config)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} tickets, have {found}")


def inbound_rows(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "mailbot.db") as db:
        return db.execute("SELECT id, status, outcome, reason FROM inbound ORDER BY id").fetchall()


def wait_processed(tmp_path: Path, count: int, timeout: float = 15.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        rows = inbound_rows(tmp_path)
        if len(rows) >= count and all(r[1] != "pending" for r in rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"inbound not processed: {rows}")


@pytest.mark.parametrize(
    ("tag", "severity", "target"),
    [
        ("[Emergency]", "emergency", "within 1 hour"),
        ("[High]", "high", "within 4 business hours"),
        ("", "normal", "within 1 business day"),
        ("[Low]", "low", "within 2 business days"),
    ],
)
def test_new_ticket_per_severity_with_acknowledgement(daemon, sink: Sink, tag, severity, target):
    bot = daemon()
    raw = make_mail(f"{tag} Pipeline down".strip())
    send(bot.port, raw)
    [ack] = sink.wait_for(1)
    [ticket] = tickets(bot.config_path)
    assert ticket["ref"] == "SUP-1001"
    assert ticket["severity"] == severity
    assert ticket["subject"] == "Pipeline down"
    assert ticket["requester"] == "alice@customer.example"
    msg = ack.message
    assert ack.rcpt_tos == ["alice@customer.example"]
    assert msg["Subject"] == "[SUP-1001] Pipeline down"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["In-Reply-To"] == f"<{message_id_of(raw)}>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    body = ack.text()
    assert severity.capitalize() in body and target in body
    assert "reply" in body.lower() and "6:00 to 18:00" in body
    assert bot.stop() == 0


def test_reply_by_reference_and_by_in_reply_to_thread_without_second_ack(daemon, sink: Sink):
    bot = daemon()
    first = make_mail("[Emergency] Pipeline down")
    send(bot.port, first)
    [ack] = sink.wait_for(1)
    ack_id = ack.message["Message-ID"].strip("<>")
    send(bot.port, make_mail("Re: [SUP-1001] Pipeline down", body="It is back.\n"))
    by_header = make_mail("Totally different subject", in_reply_to=ack_id, references=[ack_id])
    send(bot.port, by_header)
    rows = wait_processed(bot.config_path.parent, 3)
    assert [r[2] for r in rows] == ["created", "appended", "appended"]
    [ticket] = tickets(bot.config_path)
    assert ticket["message_count"] == 4  # 3 inbound + our acknowledgement
    detail = cli_json(bot.config_path, "tickets", "show", "SUP-1001")
    directions = [m["direction"] for m in detail["messages"]]
    assert directions.count("inbound") == 3 and directions.count("outbound") == 1
    assert detail["messages"][-1]["subject"] == "Totally different subject"
    time.sleep(0.5)  # give a (wrong) second acknowledgement the chance to arrive
    assert len(sink.received) == 1


def test_escalation_by_reply_is_recorded(daemon, sink: Sink):
    bot = daemon()
    send(bot.port, make_mail("[Low] Slow export"))
    sink.wait_for(1)
    send(bot.port, make_mail("Re: [SUP-1001] [Emergency] now it is down"))
    wait_processed(bot.config_path.parent, 2)
    detail = cli_json(bot.config_path, "tickets", "show", "SUP-1001")
    assert detail["severity"] == "emergency"
    assert [e["kind"] for e in detail["events"]] == ["escalated"]


def test_duplicate_delivery_creates_nothing_new(daemon, sink: Sink):
    bot = daemon()
    raw = make_mail("[High] Twice")
    send(bot.port, raw)
    send(bot.port, raw)
    no_id = make_mail("no id", message_id=None)
    send(bot.port, no_id)
    send(bot.port, no_id)
    rows = wait_processed(bot.config_path.parent, 4)
    assert sorted(r[2] for r in rows) == ["created", "created", "ignored", "ignored"]
    assert len(tickets(bot.config_path)) == 2
    sink.wait_for(2)
    time.sleep(0.5)  # a (wrong) ack for a duplicate would arrive by now
    assert sorted(r.message["Subject"] for r in sink.received) == [
        "[SUP-1001] Twice",
        "[SUP-1002] no id",
    ]


def test_auto_reply_gets_ticket_but_no_ack(daemon, sink: Sink):
    bot = daemon()
    send(bot.port, make_mail("Out of office", headers={"Auto-Submitted": "auto-replied"}))
    send(bot.port, make_mail("Newsletter", headers={"Precedence": "bulk"}))
    send(bot.port, make_mail("Bounce"), mail_from="")
    send(bot.port, make_mail("Human question", sender="human@customer.example"))
    sink.wait_for(1)
    wait_processed(bot.config_path.parent, 4)
    assert len(tickets(bot.config_path)) == 4
    time.sleep(0.5)
    assert [r.rcpt_tos for r in sink.received] == [["human@customer.example"]]


def test_per_sender_acknowledgement_limit(daemon, sink: Sink):
    bot = daemon({"acknowledgement": {"max_per_sender_per_hour": 2}})
    for n in range(4):
        send(bot.port, make_mail(f"question {n}"))
    send(bot.port, make_mail("other sender", sender="bob@customer.example"))
    wait_processed(bot.config_path.parent, 5)
    assert len(tickets(bot.config_path)) == 5
    sink.wait_for(3)
    time.sleep(0.5)
    recipients = sorted(r.rcpt_tos[0] for r in sink.received)
    assert recipients == ["alice@customer.example"] * 2 + ["bob@customer.example"]


def test_only_support_addresses_are_accepted(daemon, sink: Sink):
    bot = daemon()
    with smtplib.SMTP("127.0.0.1", bot.port) as client:
        client.ehlo()
        code, _ = client.mail("alice@customer.example")
        assert code == 250
        assert client.rcpt("victim@elsewhere.example")[0] == 550
        assert client.rcpt("SUPPORT@example.com")[0] == 250
        assert client.rcpt("help@example.com")[0] == 250  # alias
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(bot.port, make_mail("relay me"), rcpt=["victim@elsewhere.example"])


def test_message_over_size_limit_gets_552(daemon, sink: Sink):
    bot = daemon({"intake": {"smtp": {"max_message_size": 20_000}}})
    big = make_mail("big", body=("y" * 70 + "\n") * 400)
    with smtplib.SMTP("127.0.0.1", bot.port) as client:
        client.ehlo()
        assert client.has_extn("size") and client.esmtp_features["size"] == "20000"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # SIZE= declared up front
            client.sendmail("alice@customer.example", ["support@example.com"], big)
        assert refused.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", bot.port) as client:  # no SIZE: caught during DATA
        client.ehlo()
        client.mail("alice@customer.example")
        client.rcpt("support@example.com")
        code, _ = client.data(big)
        assert code == 552
    assert inbound_rows(bot.config_path.parent) == []


def test_database_failure_answers_451_and_loses_nothing(daemon, sink: Sink):
    bot = daemon({"database": {"busy_timeout": 0.5}})
    raw = make_mail("[High] stored despite a locked database")
    locker = sqlite3.connect(bot.config_path.parent / "mailbot.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            send(bot.port, raw)
        assert failed.value.smtp_code == 451
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    send(bot.port, raw)  # the sending MTA retries after the 451
    [ticket] = wait_tickets(bot.config_path, 1)
    assert ticket["severity"] == "high"
    sink.wait_for(1)
    assert "answered 451" in bot.log()


def test_lmtp_answers_once_per_recipient(daemon, sink: Sink):
    bot = daemon({"intake": {"smtp": {"protocol": "lmtp"}}})
    client = smtplib.LMTP()
    client.connect("127.0.0.1", bot.port)
    try:
        assert client.ehlo()[0] == 250  # smtplib's LMTP sends LHLO
        assert client.mail("alice@customer.example")[0] == 250
        assert client.rcpt("support@example.com")[0] == 250
        assert client.rcpt("help@example.com")[0] == 250
        assert client.rcpt("nobody@example.com")[0] == 550
        code, _ = client.data(make_mail("lmtp delivery"))
        assert code == 250
        assert client.getreply()[0] == 250  # the second recipient's reply
    finally:
        client.close()
    [ticket] = wait_tickets(bot.config_path, 1)
    assert ticket["subject"] == "lmtp delivery"


def test_8bit_and_smtputf8_mail_is_accepted(daemon, sink: Sink):
    bot = daemon()
    latin1 = (Path(__file__).parent.parent / "data" / "eml" / "latin1_8bit.eml").read_bytes()
    send(bot.port, latin1, mail_from="joerg@kunde.example", mail_options=["BODY=8BITMIME"])
    utf8 = (
        "From: Jörg <jörg@kunde.example>\r\nTo: support@example.com\r\n"
        "Subject: [High] Umlaute überall\r\nMessage-ID: <u8@kunde.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße\r\n"
    ).encode()
    send(bot.port, utf8, mail_from="jörg@kunde.example", mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    found = {t["subject"]: t for t in wait_tickets(bot.config_path, 2)}
    assert found["Grüße und Frage"]["severity"] == "low"
    assert found["Umlaute überall"]["requester"] == "jörg@kunde.example"


def test_relay_4xx_is_retried_with_the_same_message_id(daemon, sink: Sink):
    sink.handler.fail_next = 2
    bot = daemon()
    send(bot.port, make_mail("[High] retry me"))
    [ack] = sink.wait_for(1)
    assert sink.handler.attempts == 3
    [outbound] = [
        m
        for m in cli_json(bot.config_path, "tickets", "show", "SUP-1001")["messages"]
        if m["direction"] == "outbound"
    ]
    assert ack.message["Message-ID"] == f"<{outbound['message_id']}>"


def test_relay_5xx_marks_the_acknowledgement_failed(daemon, sink: Sink):
    sink.handler.fail_next = 1
    sink.handler.fail_status = "550 5.1.1 no such user"
    bot = daemon()
    send(bot.port, make_mail("[High] bounce me"))
    bot.wait_log("failed: 550")
    with sqlite3.connect(bot.config_path.parent / "mailbot.db") as db:
        assert db.execute("SELECT status, attempts FROM outbox").fetchall() == [("failed", 1)]
    assert sink.received == []


def test_restart_resends_unsent_acknowledgement_with_same_message_id(daemon, sink: Sink):
    sink.stop()  # the relay is down while the ticket is created
    bot = daemon()
    send(bot.port, make_mail("[Emergency] relay down"))
    bot.wait_log("retry 1")
    assert bot.stop() == 0
    with sqlite3.connect(bot.config_path.parent / "mailbot.db") as db:
        [(status, message_id)] = db.execute("SELECT status, message_id FROM outbox").fetchall()
    assert status == "pending"
    sink.start()  # same port: a new aiosmtpd server
    bot.start()
    [ack] = sink.wait_for(1, timeout=20)
    assert ack.message["Message-ID"] == f"<{message_id}>"


def test_sigterm_with_messages_in_flight_loses_nothing(daemon, sink: Sink):
    bot = daemon()
    accepted: list[bytes] = []
    errors: list[Exception] = []

    def client(n: int) -> None:
        for i in range(15):
            raw = make_mail(f"load {n}-{i}", sender=f"c{n}@customer.example")
            try:
                send(bot.port, raw)
                accepted.append(raw)
            except (smtplib.SMTPException, OSError) as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(accepted) < 10:
        time.sleep(0.01)
    assert bot.stop() == 0
    for t in threads:
        t.join()
    assert "stopped" in bot.log()
    bot.start()
    found = wait_tickets(bot.config_path, len(accepted))
    subjects = {t["subject"] for t in found}
    for raw in accepted:
        assert any(s.encode() in raw for s in subjects)
    assert len(found) == len(accepted)


def test_broken_operator_template_quarantines_and_worker_goes_on(daemon, sink: Sink, tmp_path):
    templates = tmp_path / "templates"
    (templates / "ack").mkdir(parents=True)
    repo_templates = Path(__file__).resolve().parents[2] / "templates" / "ack"
    for item in repo_templates.iterdir():
        (templates / "ack" / item.name).write_text(item.read_text())
    (templates / "ack" / "high.txt.j2").write_text("Hello {{ no_such_variable }}\n")
    bot = daemon({"acknowledgement": {"templates": str(templates)}})
    send(bot.port, make_mail("[High] breaks the template"))
    send(bot.port, make_mail("[Low] fine", sender="bob@customer.example"))
    rows = wait_processed(tmp_path, 2)
    assert [r[1] for r in rows] == ["quarantined", "done"]
    assert "no_such_variable" in rows[0][3]
    assert [t["subject"] for t in tickets(bot.config_path)] == ["fine"]
    assert "quarantined" in bot.log()
