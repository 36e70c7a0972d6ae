"""Corpus cases: client reply shapes, hijack attempts, robots, bounces."""

from __future__ import annotations

from corpus.builders import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MALLORY,
    SHAPES,
    SUBJECT1,
    SUPPORT,
    add,
    basic,
    dsn,
    mp,
    new,
    reply,
)


def reply_cases() -> None:
    for shape in SHAPES:
        raw = reply(shape, f"Alice <{ALICE}>", f"{shape}-alice@customer.example")
        add(f"reply-{shape}-requester", raw, "appended", False, "SUP-1001", f"{shape} reply")
    prefixes = ["RE:", "AW:", "SV:", "Antw:", "RE: AW:", "Re[2]:", "Fwd: Re:", "R:"]
    for i, prefix in enumerate(prefixes):
        raw = reply(
            "outlook",
            ALICE,
            f"prefix{i}@customer.example",
            subject=f"{prefix} [SUP-1001] {SUBJECT1}",
            in_reply_to=None,
            references=None,
        )
        add(f"reply-prefix-{i}", raw, "appended", False, "SUP-1001", f"'{prefix}' + reference")
    raw = reply(
        "gmail",
        ALICE,
        "refs-only@customer.example",
        subject="Re: changed subject",
        in_reply_to=None,
    )
    add("reply-references-only", raw, "appended", False, "SUP-1001", "References only")
    raw = reply(
        "gmail", ALICE, "irt-only@customer.example", subject="totally new subject", references=None
    )
    add("reply-in-reply-to-only", raw, "appended", False, "SUP-1001", "In-Reply-To only")
    raw = reply(
        "gmail",
        ALICE,
        "to-original@customer.example",
        subject="Re: Export",
        in_reply_to="base1@customer.example",
        references="<base1@customer.example>",
    )
    add("reply-to-own-original", raw, "appended", False, "SUP-1001", "names her first mail")
    for shape in ("outlook", "gmail", "apple", "thunderbird"):
        raw = reply(shape, f"Bob <{BOB}>", f"{shape}-bob@customer.example")
        add(f"reply-{shape}-cc-colleague", raw, "appended", False, "SUP-1001", "Cc colleague")
    raw = reply(
        "gmail", CAROL, "carol-token@customer.example", subject="Re: forwarded ack", references=None
    )
    add("reply-token-new-address", raw, "appended", False, "SUP-1001", "valid reply token")
    raw = reply(
        "gmail", "Support Staff <dana@example.com>", "staff@example.com", text="We are on it."
    )
    add("reply-staff", raw, "appended", False, "SUP-1001", "staff may append")


# ---------------------------------------------------------------- C. hijack attempts


def hijack_cases() -> None:
    for shape in ("outlook", "gmail", "apple"):
        raw = reply(
            shape, MALLORY, f"{shape}-mallory@attacker.example", in_reply_to=None, references=None
        )
        new(f"hijack-subject-{shape}", raw, "stranger names [SUP-1001]")
    raw = reply(
        "gmail",
        MALLORY,
        "forged-irt@attacker.example",
        subject="Re: Export",
        in_reply_to="base1@customer.example",
        references="<base1@customer.example>",
    )
    new("hijack-forged-in-reply-to", raw, "forged In-Reply-To, no token")
    raw = reply(
        "gmail",
        MALLORY,
        "tampered@attacker.example",
        in_reply_to="@@ACK1_TAMPERED@@",
        references="<@@ACK1_TAMPERED@@>",
    )
    new("hijack-tampered-token", raw, "token with a wrong HMAC")
    raw = reply(
        "gmail",
        MALLORY,
        "other-token@attacker.example",
        in_reply_to="@@ACK2@@",
        references="<@@ACK2@@>",
    )
    new("hijack-token-other-ticket", raw, "a valid token, but for SUP-1002")
    raw = reply(
        "gmail",
        f"Mallory <{MALLORY}>",
        "replyto@attacker.example",
        in_reply_to=None,
        references=None,
    )
    raw = raw.replace(b"\r\nSubject:", f"\r\nReply-To: {ALICE}\r\nSubject:".encode(), 1)
    new("hijack-reply-to-requester", raw, "Reply-To names the requester")
    raw = reply(
        "gmail",
        f'"{ALICE}" <{MALLORY}>',
        "lookalike@attacker.example",
        in_reply_to=None,
        references=None,
    )
    new("hijack-display-name-spoof", raw, "requester's address as display name")
    raw = reply(
        "gmail",
        ALICE,
        "alice-on-1002@customer.example",
        subject="Re: [SUP-1002] Login page slow",
        in_reply_to=None,
        references=None,
    )
    new("hijack-requester-of-other-ticket", raw, "Alice is not on SUP-1002")


# ---------------------------------------------------------------- D. automatic mail


def automatic_cases() -> None:
    oof = "I am out of the office until Monday."
    raw = basic(
        ALICE,
        f"Out of Office: [SUP-1001] {SUBJECT1}",
        "oof1@customer.example",
        oof,
        [("Auto-Submitted", "auto-replied"), ("In-Reply-To", "<@@ACK1@@>")],
    )
    add("oof-requester-rfc3834", raw, "appended", False, "SUP-1001", "OOF to our ack")
    raw = basic(
        ALICE,
        f"Automatic reply: [SUP-1001] {SUBJECT1}",
        "oof2@customer.example",
        oof,
        [
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
            ("In-Reply-To", "<@@ACK1@@>"),
        ],
    )
    add("oof-exchange", raw, "appended", False, "SUP-1001", "Exchange automatic reply")
    raw = basic(
        "vacation@robots.example",
        "Re: your mail",
        "oof3@robots.example",
        oof,
        [("Precedence", "auto_reply")],
    )
    new("oof-precedence-auto-reply", raw, "Precedence: auto_reply", ack=False)
    raw = basic(
        "vacation2@robots.example", "Away", "oof4@robots.example", oof, [("X-Autoreply", "yes")]
    )
    new("oof-x-autoreply", raw, "X-Autoreply", ack=False)
    raw = basic(
        "gmailvac@robots.example",
        "Vacation",
        "oof5@robots.example",
        oof,
        [("Auto-Submitted", "auto-replied (vacation)"), ("Precedence", "bulk")],
    )
    new("oof-gmail-vacation", raw, "Gmail vacation responder", ack=False)
    raw = basic(
        MALLORY,
        f"Auto: [SUP-1001] {SUBJECT1}",
        "oof6@attacker.example",
        oof,
        [("Auto-Submitted", "auto-replied")],
    )
    new("oof-stranger-naming-ticket", raw, "robot of a stranger", ack=False)
    raw = basic(
        "list@lists.example",
        "[dev] weekly digest",
        "list1@lists.example",
        "digest",
        [("List-Id", "<dev.lists.example>"), ("List-Unsubscribe", "<mailto:u@l.example>")],
    )
    new("mailing-list", raw, "List-Id", ack=False)
    raw = basic("noreply@saas.example", "Your invoice", "noreply1@saas.example")
    new("noreply-sender", raw, "noreply@", ack=False)
    raw = basic(
        "news@shop.example", "Newsletter", "bulk1@shop.example", extra=[("Precedence", "bulk")]
    )
    new("precedence-bulk", raw, "Precedence: bulk", ack=False)
    raw = basic("junk@shop.example", "Offer", "junk1@shop.example", extra=[("Precedence", "junk")])
    new("precedence-junk", raw, "Precedence: junk", ack=False)
    raw = basic(f"Support <{SUPPORT}>", "Loop test", "own1@example.com")
    new("from-our-own-address", raw, "never an ack to our own address", ack=False)
    raw = basic("help@example.com", "Alias loop", "own2@example.com")
    new("from-our-alias", raw, "our alias", ack=False)
    raw = basic(
        "erin@customer.example",
        f"[SUP-1001] {SUBJECT1}",
        "xloop@customer.example",
        "Forwarded by a rule.",
        [("X-Loop", SUPPORT)],
    )
    new("x-loop-ours", raw, "carries our X-Loop", ack=False)
    raw = basic(
        f"Support <{SUPPORT}>",
        f"[SUP-1001] {SUBJECT1}",
        "@@ACK1@@",
        "Our acknowledgement, delivered back to us.",
        [("Auto-Submitted", "auto-replied"), ("X-Loop", SUPPORT)],
    )
    add("our-ack-looped-back", raw, "ignored", False, None, "our own Message-ID: duplicate")
    raw = basic(
        "robot@ci.example",
        "Build failed",
        "ci1@ci.example",
        extra=[("Auto-Submitted", "auto-generated")],
    )
    new("ci-notification", raw, "Auto-Submitted: auto-generated", ack=False)
    raw = basic("empty-return@customer.example", "Null sender", "null1@customer.example")
    new("null-envelope-person", raw, "null envelope sender: no ack", ack=False, mail_from="")


def bounce_cases() -> None:
    raw = dsn("unknown-original@example.com", ALICE, mid="dsn-unknown@mx.customer.example")
    add("dsn-unknown-message", raw, "ignored", False, None, "about no mail of ours", "")
    raw = dsn("x", ALICE, original="none", mid="dsn-noorig@mx.customer.example")
    add("dsn-without-original", raw, "ignored", False, None, "no original Message-ID", "")
    raw = dsn(
        "@@ACK1@@",
        ALICE,
        action="delayed",
        original="headers",
        subject="Delayed Mail (still being retried)",
        mid="dsn-delay@mx.customer.example",
    )
    add("dsn-delayed", raw, "appended", False, "SUP-1001", "delayed: attached", "")
    raw = dsn("@@ACK1@@", ALICE, original="headers", mid="dsn-headers@mx.customer.example")
    add("dsn-postfix-rfc822-headers", raw, "appended", False, "SUP-1001", "Postfix DSN", "")
    raw = dsn(
        "@@ACK1@@",
        ALICE,
        mid="dsn-gmail@mail.gmail.example",
        sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        subject="Delivery Status Notification (Failure)",
    )
    add("dsn-gmail", raw, "appended", False, "SUP-1001", "Gmail-style DSN", "")
    raw = dsn(
        "@@ACK2@@",
        DAVE,
        mid="ndr@exchange.other.example",
        sender="postmaster@other.example",
        subject="Undeliverable: [SUP-1002] Login",
    )
    add("dsn-exchange-ndr", raw, "appended", False, "SUP-1002", "Exchange NDR", "")
    qmail = (
        "Hi. This is the qmail-send program at mx.other.example.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
        f"<{DAVE}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        f"Return-Path: <{SUPPORT}>\r\nFrom: Support <{SUPPORT}>\r\nTo: {DAVE}\r\n"
        "Message-ID: <@@ACK2@@>\r\nSubject: [SUP-1002] Login page slow\r\n\r\nThank you.\r\n"
    )
    raw = basic(
        "MAILER-DAEMON@mx.other.example",
        "failure notice",
        "qmail@mx.other.example",
        qmail,
        ctype="text/plain; charset=us-ascii",
    )
    add("bounce-qmail-plain", raw, "appended", False, "SUP-1002", "plain MAILER-DAEMON bounce", "")
    raw = basic(
        "Mail Delivery Subsystem <root@host.other.example>",
        "Returned mail: see transcript",
        "sendmail@host.other.example",
        "   ----- Original message follows -----\r\nMessage-ID: <@@ACK2@@>\r\n",
        ctype="text/plain",
    )
    add(
        "bounce-null-sender-subject",
        raw,
        "appended",
        False,
        "SUP-1002",
        "null sender + subject",
        "",
    )
    raw = basic(
        "MAILER-DAEMON@mx.nowhere.example",
        "failure notice",
        "bounce-nothing@nowhere.ex",
        "Something failed, no headers quoted.",
    )
    add("bounce-nothing-to-match", raw, "ignored", False, None, "bounce with no original", "")
    raw = basic(
        "MAILER-DAEMON@mx.customer.example",
        "Undelivered",
        "bounce-sjis@mx.customer.ex",
        "配信できませんでした\r\nMessage-ID: <@@ACK1@@>\r\n".encode("shift_jis"),
        [("Content-Transfer-Encoding", "8bit")],
        "text/plain; charset=shift_jis",
    )
    add("bounce-shift-jis", raw, "appended", False, "SUP-1001", "Japanese bounce", "")
    mdn_ctype, mdn = mp(
        "MDN",
        [
            b"Content-Type: text/plain\r\n\r\nYour message was displayed.",
            b"Content-Type: message/disposition-notification\r\n\r\nReporting-UA: Outlook\r\n"
            b"Original-Message-ID: <@@ACK1@@>\r\nDisposition: manual-action/MDN-sent-manually; "
            b"displayed",
        ],
        "multipart/report",
    )
    raw = basic(
        ALICE,
        f"Read: [SUP-1001] {SUBJECT1}",
        "mdn@customer.example",
        mdn,
        [("In-Reply-To", "<@@ACK1@@>")],
        mdn_ctype + "; report-type=disposition-notification",
    )
    add("mdn-read-receipt", raw, "appended", False, "SUP-1001", "read receipt: not a bounce")
    raw = basic(ALICE, "New problem after the bounce", "after-bounce@customer.example")
    new("after-bounce-no-ack", raw, "Alice's address bounced: no automatic mail", ack=False)
