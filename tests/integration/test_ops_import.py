"""``mailbot import``: a backlog through the normal pipeline, twice, with no duplicates."""

from __future__ import annotations

import mailbox
import shutil
import sqlite3
from pathlib import Path

import pytest
from support.daemon import REPO, cli_json, run_cli
from support.mail import make_mail, message_id_of

pytestmark = pytest.mark.integration


def outbox_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_mbox_of_500_twice_gives_500_tickets(make_config, tmp_path: Path) -> None:
    config, _ = make_config()
    path = tmp_path / "backlog.mbox"
    box = mailbox.mbox(str(path))
    for n in range(500):
        box.add(make_mail(f"Old request {n}", sender=f"customer{n}@old.example"))
    box.flush()
    box.close()

    first = run_cli(config, "import", str(path), timeout=600)
    assert first.returncode == 0, first.stderr
    # not a terminal: no progress bar, one plain summary line
    assert first.stdout.splitlines()[0] == (
        f"imported 500 message(s) from {path}: 500 created, 0 appended, 0 ignored, "
        "0 quarantined, 0 deferred (database busy), 0 already imported"
    )
    assert "\r" not in first.stderr and "msg/s" not in first.stderr

    second = run_cli(config, "import", str(path), timeout=600)
    assert second.returncode == 0, second.stderr
    assert "0 created" in second.stdout and "500 already imported" in second.stdout

    tickets = cli_json(config, "tickets", "list")
    assert len(tickets) == 500
    assert {t["subject"] for t in tickets} == {f"Old request {n}" for n in range(500)}
    assert outbox_count(tmp_path / "mailbot.db") == 0  # acknowledgements off by default


def test_maildir_oldest_first_replies_thread_and_ack_on_request(
    make_config, tmp_path: Path
) -> None:
    config, _ = make_config()
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(str(folder))
    question = make_mail("[High] Export broken", sender="bob@old.example")
    reply = make_mail(
        "Re: [High] Export broken",
        sender="bob@old.example",
        in_reply_to=message_id_of(question),
        references=[message_id_of(question)],
    )
    # maildir names start with the delivery time: make the reply's sort after the question's
    for name, raw in (("1700000000.a.host", question), ("1700000100.b.host", reply)):
        (folder / "cur" / f"{name}:2,S").write_bytes(raw)
    assert len(box) == 2

    result = run_cli(config, "import", str(folder), "--ack")
    assert result.returncode == 0, result.stderr
    assert "1 created, 1 appended" in result.stdout
    [ticket] = cli_json(config, "tickets", "list")
    print(cli_json(config, "tickets", "show", ticket["ref"]))
    assert (ticket["severity"], ticket["message_count"]) == ("high", 3)  # 2 in + 1 ack
    assert outbox_count(tmp_path / "mailbot.db") == 1


def test_an_old_emergency_in_a_backlog_pages_nobody_unless_acknowledged(
    make_config, tmp_path: Path
) -> None:
    """Without ``--ack`` a backlog is history: an Emergency in it is an Emergency ticket,
    and on-call is not woken for it; with ``--ack`` it is live mail and pages."""
    paging = {
        "paging": {"oncall_address": "oncall@example.com", "allowed_domains": ["old.example"]}
    }
    config, _ = make_config(paging)
    for name, ack in (("history", ()), ("live", ("--ack",))):
        path = tmp_path / f"{name}.mbox"
        box = mailbox.mbox(str(path))
        box.add(make_mail(f"[Emergency] {name}: all down", sender=f"{name}@old.example"))
        box.flush()
        box.close()
        result = run_cli(config, "import", *ack, str(path))
        assert result.returncode == 0, result.stderr
        assert "1 created" in result.stdout
    tickets = {t["subject"]: t for t in cli_json(config, "tickets", "list")}
    history = cli_json(config, "tickets", "show", tickets["history: all down"]["ref"])
    live = cli_json(config, "tickets", "show", tickets["live: all down"]["ref"])
    assert history["severity"] == live["severity"] == "emergency"
    assert (history["page_status"], live["page_status"]) == ("off", "queued")
    with sqlite3.connect(tmp_path / "mailbot.db") as conn:
        kinds = conn.execute("SELECT kind, recipient FROM outbox ORDER BY id").fetchall()
    assert sorted(kinds) == [("ack", "live@old.example"), ("page", "oncall@example.com")]


def test_not_a_mailbox(make_config, tmp_path: Path) -> None:
    config, _ = make_config()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    result = run_cli(config, "import", str(text))
    assert result.returncode == 65 and "not an mbox file" in result.stderr
    missing = run_cli(config, "import", str(tmp_path / "nope"))
    assert missing.returncode == 66


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_replies_across_chunks_thread_whether_parsed_here_or_in_a_pool(
    make_config, tmp_path: Path, jobs: str
) -> None:
    """Replies 60 messages after their question (another chunk, parsed by another process
    when there is a pool) still find its ticket, decisions follow mailbox order, and an
    over-limit message is quarantined."""
    config, _ = make_config({"limits": {"max_headers": 40}})
    path = tmp_path / "backlog.mbox"
    box = mailbox.mbox(str(path))
    # 421 messages: three chunks of 200; replies 60 messages later often fall in the next.
    questions = [make_mail(f"Question {n}", sender=f"c{n}@old.example") for n in range(240)]
    for n, question in enumerate(questions):
        box.add(question)
        if n >= 60:
            earlier = questions[n - 60]
            box.add(
                make_mail(
                    f"Re: Question {n - 60}",
                    sender=f"c{n - 60}@old.example",
                    in_reply_to=message_id_of(earlier),
                    references=[message_id_of(earlier)],
                )
            )
    crowded = make_mail("Too many headers", sender="x@old.example")
    box.add(b"".join(b"X-Filler-%d: yes\n" % n for n in range(50)) + crowded)
    box.flush()
    box.close()

    result = run_cli(config, "import", "--jobs", jobs, str(path), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "240 created, 180 appended, 0 ignored, 1 quarantined" in result.stdout
    tickets = cli_json(config, "tickets", "list")
    counts = {t["subject"]: t["message_count"] for t in tickets}
    assert counts == {f"Question {n}": 2 if n < 180 else 1 for n in range(240)}
    # Decided in mailbox order: ticket numbers follow the questions' order.
    by_number = sorted(tickets, key=lambda t: int(t["ref"].rsplit("-", 1)[1]))
    assert [t["subject"] for t in by_number] == [f"Question {n}" for n in range(240)]
    [held] = cli_json(config, "quarantine", "list")
    assert "headers" in held["reason"]


def test_jobs_must_not_be_negative(make_config, tmp_path: Path) -> None:
    config, _ = make_config()
    path = tmp_path / "backlog.mbox"
    path.write_bytes(b"From x Mon Mar  3 09:00:00 2025\n" + make_mail("Hi", sender="a@b.example"))
    result = run_cli(config, "import", "--jobs", "-1", str(path))
    assert result.returncode == 64 and "--jobs must be 0 or more" in result.stderr


def test_broken_templates_stop_the_import_with_one_line_and_store_nothing(
    make_config, tmp_path: Path
) -> None:
    """The import builds only the worker (not the daemon), with the same report of
    templates that do not compile: exit 78, one line naming the folder, no traceback."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    (templates / "ack" / "default.txt.j2").write_text("Ticket {{ ticket.number }\n")
    config, _ = make_config({"acknowledgement": {"templates": str(templates)}})
    path = tmp_path / "backlog.mbox"
    box = mailbox.mbox(str(path))
    box.add(make_mail("Old request", sender="customer@old.example"))
    box.flush()
    box.close()

    result = run_cli(config, "import", str(path))

    assert result.returncode == 78, result.stderr
    assert f"templates in {templates}" in result.stderr
    assert "Traceback" not in result.stderr
    with sqlite3.connect(tmp_path / "mailbot.db") as db:
        assert db.execute("SELECT count(*) FROM inbound").fetchone() == (0,)
