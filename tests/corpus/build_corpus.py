"""Writes the hostile/broken mail corpus: ``messages/*.eml`` and ``expected.json``.

    cd tests && python -m corpus.build_corpus   # rewrite the corpus (deterministic)

Real-world shapes (Outlook, Gmail, Apple Mail, Thunderbird replies; out-of-office
robots; Postfix, qmail, Exchange and Gmail bounces) and broken ones (bad charsets,
8-bit headers, unclosed MIME, missing or duplicate headers, header injection), each
with the outcome the real pipeline must reach.  ``tests/integration/test_security_corpus.py``
runs them all, in file-name order, through one mailbot after two set-up tickets:

- SUP-1001 from alice@customer.example with bob@customer.example on Cc
  (Message-ID <base1@customer.example>), and
- SUP-1002 from dave@other.example (<base2@other.example>).

Placeholders replaced at run time: ``@@ACK1@@``/``@@ACK2@@`` (the Message-ID of the
acknowledgement of SUP-1001/1002, with its reply token), ``@@ACK1_TAMPERED@@`` (the same
with a wrong token).  Expected: ``outcome`` (created, appended, ignored, quarantined),
``ack`` (an acknowledgement was queued) and ``ticket`` ("SUP-1001", "SUP-1002", "new"
or null).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from corpus import cases_structure, cases_text, cases_threads
from corpus.builders import ALICE, BOB, CASES, DATE, DAVE, SUBJECT1, SUPPORT, Case, msg

HERE = Path(__file__).resolve().parent


def build() -> list[tuple[Case, bytes]]:
    CASES.clear()
    cases_text.charset_cases()
    cases_text.bad_charset_cases()
    cases_threads.reply_cases()
    cases_threads.hijack_cases()
    cases_threads.automatic_cases()
    cases_structure.structure_cases()
    cases_text.header_cases()
    cases_threads.bounce_cases()  # last: a bounce suppresses automatic mail to the address
    return list(CASES)


SETUP = [
    msg(
        [
            ("From", f"Alice Customer <{ALICE}>"),
            ("To", SUPPORT),
            ("Cc", f"Bob <{BOB}>"),
            ("Subject", f"[High] {SUBJECT1}"),
            ("Date", DATE),
            ("Message-ID", "<base1@customer.example>"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        b"Every CSV export since this morning is empty.\r\n",
    ),
    msg(
        [
            ("From", f"Dave <{DAVE}>"),
            ("To", SUPPORT),
            ("Subject", "Login page slow"),
            ("Date", DATE),
            ("Message-ID", "<base2@other.example>"),
        ],
        b"The login page takes 30 seconds.\r\n",
    ),
]


def write(target: Path = HERE) -> int:
    messages = target / "messages"
    messages.mkdir(parents=True, exist_ok=True)
    for old in messages.glob("*.eml"):
        old.unlink()
    cases = build()
    for case, raw in cases:
        (messages / case.file).write_bytes(raw)
    for i, raw in enumerate(SETUP, 1):
        (target / f"setup-{i}.eml").write_bytes(raw)
    expected = [asdict(case) for case, _ in cases]
    (target / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    return len(cases)


if __name__ == "__main__":
    print(f"wrote {write()} messages to {HERE / 'messages'}")
