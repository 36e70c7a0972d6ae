"""Corpus cases: charsets, lying charsets, 8-bit and encoded headers, header oddities."""

from __future__ import annotations

import base64
import quopri

from corpus.builders import (
    SUPPORT,
    add,
    basic,
    cp1258,
    encode_text,
    ew,
    msg,
    new,
)

# ---------------------------------------------------------------- A. charsets

TEXTS = {
    "iso-2022-jp": "エクスポートが失敗します。至急ご確認ください。",
    "shift_jis": "エクスポートが失敗します",
    "euc-jp": "ログインできません",
    "windows-1258": "Xuất dữ liệu bị lỗi, không thể đăng nhập",
    "gb18030": "导出失败，请尽快处理 𠀀",
    "gb2312": "无法登录系统",
    "big5": "匯出失敗，請協助",
    "euc-kr": "내보내기 실패",
    "koi8-r": "Экспорт не работает",
    "windows-1251": "Не могу войти в систему",
    "iso-8859-1": "Le fichier exporté est vide, déjà essayé",
    "iso-8859-2": "Eksport nie działa, proszę o pomoc",
    "iso-8859-15": "Prix en € incorrect",
    "windows-1252": "Smart “quotes” — and dashes",
    "utf-8": "Ünïcödé ✓ 日本語 🚀",
}


def charset_cases() -> None:
    for i, (charset, text) in enumerate(TEXTS.items()):
        sender = f"charset{i}@intl.example"
        codec = "cp1258" if charset == "windows-1258" else charset
        subject = (
            ew(text[:12], codec)
            if charset != "windows-1258"
            else "=?windows-1258?B?" + base64.b64encode(cp1258(text[:12])).decode() + "?="
        )
        body = encode_text(text + "\n", charset)
        cte = "7bit" if charset == "iso-2022-jp" else "base64"
        payload = body if cte == "7bit" else base64.encodebytes(body)
        raw = basic(
            sender,
            subject,
            f"cs{i}-b@intl.example",
            payload,
            [("Content-Transfer-Encoding", cte)],
            f"text/plain; charset={charset}",
        )
        new(f"charset-{charset}-b64", raw, f"{charset} subject and body", text=text[:8])
        if charset != "iso-2022-jp":
            qp = quopri.encodestring(body)
            raw = basic(
                sender,
                ew(text[:8], codec, "Q") if charset != "windows-1258" else "Tieng Viet",
                f"cs{i}-q@intl.example",
                qp,
                [("Content-Transfer-Encoding", "quoted-printable")],
                f'text/plain; charset="{charset}"',
            )
            new(f"charset-{charset}-qp", raw, f"{charset} quoted-printable", text=text[:8])


def bad_charset_cases() -> None:
    latin = "Café déjà vu\n".encode("latin-1")
    utf8 = "Café déjà vu — ünïcode\n".encode()
    shapes = [
        ("unknown-8bit", "text/plain; charset=unknown-8bit", latin, "unknown-8bit charset"),
        ("x-bogus", "text/plain; charset=x-bogus-charset", latin, "charset Python does not know"),
        ("utf8-alias", "text/plain; charset=utf8", utf8, "utf8 alias"),
        ("utf8-lies", "text/plain; charset=utf-8", latin, "declared utf-8, latin-1 bytes"),
        ("latin-lies", "text/plain; charset=iso-8859-1", utf8, "declared latin-1, utf-8 bytes"),
        ("empty-charset", 'text/plain; charset=""', utf8, "empty charset parameter"),
        ("spaced-charset", 'text/plain; charset=" UTF-8 "', utf8, "charset with spaces"),
        ("no-charset-8bit", "text/plain", utf8, "8-bit body, no charset"),
        ("jis-8bit", "text/plain; charset=iso-2022-jp", utf8, "iso-2022-jp declared, 8-bit"),
        ("gb2312-ext", "text/plain; charset=gb2312", "𠀀 汉字\n".encode("gb18030"), "gb18030-only"),
        ("utf16", "text/plain; charset=utf-16", "UTF-16 body\n".encode("utf-16"), "utf-16 body"),
        ("nul-bytes", "text/plain; charset=utf-8", b"before\x00after\x00\r\n", "NUL in body"),
    ]
    for i, (slug, ctype, body, note) in enumerate(shapes):
        raw = basic(
            f"bad{i}@intl.example",
            f"Bad charset {i}",
            f"bad{i}@intl.example",
            body,
            (("Content-Transfer-Encoding", "8bit"),),
            ctype,
        )
        new(f"badcharset-{slug}", raw, note)
    subjects = [
        ("ew-unknown", "=?x-bogus?B?SGVsbG8gd29ybGQ=?=", "encoded word, unknown charset"),
        ("ew-bad-b64", "=?utf-8?B?!!!not-base64***?= tail", "encoded word, broken base64"),
        ("ew-bad-qp", "=?utf-8?Q?caf=C3?= truncated", "encoded word, truncated UTF-8"),
        ("ew-mixed", "=?iso-8859-1?Q?Caf=E9?= =?koi8-r?B?68/T?= plain", "mixed encoded words"),
        ("raw-utf8", "Exportación falló — 日本".encode(), "raw UTF-8 subject (RFC 6532)"),
        ("raw-latin1", "Exportación falló".encode("latin-1"), "raw Latin-1 subject"),
        ("raw-invalid", b"Broken \xff\xfe\xc3 bytes", "invalid 8-bit subject bytes"),
    ]
    for i, (slug, subject, note) in enumerate(subjects):
        raw = basic(f"subj{i}@intl.example", subject, f"subj{i}@intl.example")
        new(f"subject-{slug}", raw, note)
    raw = basic("José Núñez <jose@intl.example>".encode(), "8-bit name", "name8@intl.example")
    new("from-8bit-name", raw, "raw UTF-8 display name in From")
    raw = basic(
        b"=?utf-8?B?" + base64.b64encode("Zoë".encode()) + b"?= <zoe@intl.example>",
        "encoded name",
        "ewname@intl.example",
    )
    new("from-encoded-name", raw, "encoded display name")
    att = msg(
        [
            ("From", "files@intl.example"),
            ("To", SUPPORT),
            ("Subject", "RFC 2231 filenames"),
            ("Message-ID", "<rfc2231@intl.example>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/mixed; boundary="R"'),
        ],
        b"--R\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--R\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=x-bogus''%E9t%E9.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--R--\r\n",
    )
    new("rfc2231-bogus-charset", att, "RFC 2231 filename in an unknown charset")


# ---------------------------------------------------------------- F. headers


def header_cases() -> None:
    new("hdr-no-message-id", basic("nomid@hdr.example", "No Message-ID", None), "dedup by bytes")
    raw = basic(
        "twomid@hdr.example",
        "Two Message-IDs",
        "twomid-1@hdr.example",
        extra=[("Message-ID", "<twomid-2@hdr.example>")],
    )
    new("hdr-two-message-ids", raw, "the first Message-ID counts")
    raw = basic("bare@hdr.example", "Bare id", None, extra=[("Message-ID", "bare-id@hdr.example")])
    new("hdr-message-id-without-brackets", raw, "unbracketed Message-ID")
    raw = basic("again@hdr.example", "Twin", "twomid-1@hdr.example", b"A different body.")
    add("hdr-duplicate-message-id", raw, "ignored", False, None, "same Message-ID as before")
    raw = msg([("To", SUPPORT), ("Subject", "No From"), ("Message-ID", "<nofrom@hdr.example>")])
    new("hdr-missing-from", raw, "no From: ticket, no ack", ack=False)
    raw = msg(
        [
            ("From", ""),
            ("To", SUPPORT),
            ("Subject", "Empty From"),
            ("Message-ID", "<emptyfrom@hdr.example>"),
        ]
    )
    new("hdr-empty-from", raw, "empty From", ack=False)
    ambiguous = [
        ("group", "Undisclosed recipients:;"),
        ("no-domain", "alice"),
        ("paren-trick", "a@b.com)<c@d.com>"),
        ("two-addresses", "a@x.example, b@y.example"),
        ("angle-junk", "<<>>"),
        ("at-only", "@"),
        ("trailing-at", "someone@"),
        ("double-at", "a@b@c.example"),
        ("group-with-member", "team: a@x.example;"),
    ]
    for slug, value in ambiguous:
        raw = msg(
            [
                ("From", value),
                ("To", SUPPORT),
                ("Subject", f"Ambiguous From {slug}"),
                ("Message-ID", f"<amb-{slug}@hdr.example>"),
            ]
        )
        new(f"hdr-from-{slug}", raw, f"From {value!r}: never attributed, no ack", ack=False)
    inj = "=?utf-8?Q?Eve=0D=0ABcc:_victim@target.example?= <eve@hdr.example>"
    raw = basic(inj, "Name injection", "inj1@hdr.example")
    new("hdr-injection-encoded-name", raw, "CR/LF in an encoded display name")
    raw = basic(
        "eve2@hdr.example", "=?utf-8?Q?Hi=0D=0ABcc:_victim@target.example?=", "inj2@hdr.example"
    )
    new("hdr-injection-encoded-subject", raw, "CR/LF in an encoded subject")
    raw = basic(
        "eve3@hdr.example", "{{ 7*7 }} {% for x in range(3) %}loop{% endfor %}", "inj3@hdr.example"
    )
    new("hdr-template-syntax-subject", raw, "Jinja syntax in the subject is text")
    raw = basic('"{{ config }}" <eve4@hdr.example>', "Name template", "inj4@hdr.example")
    new("hdr-template-syntax-name", raw, "Jinja syntax in the name is text")
    raw = basic("eve5@hdr.example", "Bare\rCR in subject", "inj5@hdr.example")
    new("hdr-bare-cr-subject", raw, "a bare CR inside a header")
    raw = basic("long-subject@hdr.example", "very long subject " * 100, "longsubj@hdr.example")
    new("hdr-long-subject", raw, "a 1,800-character subject (folded by nobody)")
    raw = msg(
        [("From", "nosubj@hdr.example"), ("To", SUPPORT), ("Message-ID", "<nosubj@hdr.example>")]
    )
    new("hdr-no-subject", raw, "no Subject")
    raw = basic("blanksubj@hdr.example", "   ", "blanksubj@hdr.example")
    new("hdr-blank-subject", raw, "whitespace subject")
    for slug, value in (
        ("none", None),
        ("garbage", "yesterday at noon"),
        ("far-future", "Fri, 31 Dec 99999 23:59:59 +0000"),
        ("bad-zone", "Tue, 04 Mar 2025 09:30:00 +9999"),
    ):
        headers = [
            ("From", f"date-{slug}@hdr.example"),
            ("To", SUPPORT),
            ("Subject", f"Date {slug}"),
            ("Message-ID", f"<date-{slug}@hdr.example>"),
        ]
        if value is not None:
            headers.append(("Date", value))
        new(f"hdr-date-{slug}", msg(headers), f"Date: {value}")
    raw = msg(
        [("From", "noto@hdr.example"), ("Subject", "No To"), ("Message-ID", "<noto@hdr.example>")]
    )
    new("hdr-missing-to", raw, "no To header")
    raw = msg(
        [
            ("From", "groupto@hdr.example"),
            ("To", "undisclosed-recipients:;"),
            ("Subject", "Group To"),
            ("Message-ID", "<groupto@hdr.example>"),
        ]
    )
    new("hdr-group-to", raw, "To is an empty group")
    many_cc = ", ".join(f"person{i}@cc.example" for i in range(80))
    raw = basic("manycc@hdr.example", "Many Cc", "manycc@hdr.example", extra=[("Cc", many_cc)])
    new("hdr-80-cc", raw, "80 addresses on Cc")
    raw = basic(
        "replyto@hdr.example",
        "Reply-To elsewhere",
        "replyto@hdr.example",
        extra=[("Reply-To", "someone-else@target.example")],
    )
    new("hdr-reply-to-elsewhere", raw, "the ack goes to From, never Reply-To")
    raw = basic(
        "spoof@hdr.example",
        "Internal headers",
        "spoof@hdr.example",
        extra=[("X-Mailbot-Ticket", "SUP-1001"), ("X-Mailbot-Staff", "yes")],
    )
    new("hdr-x-mailbot-spoof", raw, "X-Mailbot-* from outside are dropped")
    raw = basic("nul@hdr.example", b"NUL\x00in subject", "nul@hdr.example")
    new("hdr-nul-in-subject", raw, "NUL byte in a header")
    raw = b"Bad Header Name: x\r\nX-\xff\xfe: y\r\n" + basic(
        "badname@hdr.example", "Bad names", "badname@hdr.example"
    )
    new("hdr-invalid-field-names", raw, "an invalid first field ends the header", ack=False)
    raw = b" leading continuation\r\n" + basic(
        "lead@hdr.example", "Leading WSP", "lead@hdr.example"
    )
    new("hdr-leading-continuation", raw, "the first line is a continuation")
    raw = basic(
        '"support@example.com" <attacker@evil.example>', "Display spoof", "dispspoof@evil.example"
    )
    new("hdr-display-name-is-our-address", raw, "ack goes to the real address")
    raw = basic("josé@bücher.example", "IDN address", "idn@hdr.example")
    new("hdr-utf8-address", raw, "RFC 6532 address: no ack (needs SMTPUTF8)", ack=False)
    raw = basic(
        "dup-subject@hdr.example",
        "First subject",
        "dupsubj@hdr.example",
        extra=[("Subject", "Second subject")],
    )
    new("hdr-two-subjects", raw, "two Subject headers")
    raw = basic(
        "dup-from@hdr.example",
        "Two Froms",
        "dupfrom@hdr.example",
        extra=[("From", "other@hdr.example")],
    )
    new("hdr-two-from-headers", raw, "two From headers: the first counts")
