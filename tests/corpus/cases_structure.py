"""Corpus cases: MIME structure, nesting, limits, odd encodings."""

from __future__ import annotations

import base64

from corpus.builders import (
    DATE,
    TEXT_PART,
    add,
    basic,
    mp,
    new,
)


def structured(
    slug: str, ctype: str, body: bytes, note: str, outcome: str = "created", ack: bool = True
) -> None:
    sender = f"{slug}@mime.example"
    raw = basic(sender, f"MIME {slug}", f"{slug}@mime.example", body, (), ctype)
    if outcome == "created":
        new(f"mime-{slug}", raw, note, ack=ack)
    else:
        add(f"mime-{slug}", raw, outcome, False, None, note)


def nested(depth: int) -> tuple[str, bytes]:
    ctype, body = "text/plain", b"deep down"
    for level in range(depth, 0, -1):
        inner = f"Content-Type: {ctype}\r\n\r\n".encode() + body
        ctype, body = mp(f"L{level}", [inner])
    return ctype, body


def structure_cases() -> None:
    structured("nested-5", *nested(5), "five nested multiparts")
    structured("nested-15", *nested(15), "fifteen nested multiparts")
    structured("nested-30", *nested(30), "over max_mime_depth", "quarantined")
    structured("parts-250", *mp("P", [TEXT_PART] * 250), "over max_mime_parts", "quarantined")
    att = (
        b'Content-Type: application/octet-stream; name="f.bin"\r\n'
        b'Content-Disposition: attachment; filename="f.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nAAAA"
    )
    structured("attachments-60", *mp("A", [TEXT_PART, *[att] * 60]), "60 attachments")
    structured(
        "attachments-150",
        *mp("A", [TEXT_PART, *[att] * 150]),
        "over max_attachments",
        "quarantined",
    )
    headers = "".join(f"X-Spam-Rule-{i}: hit\r\n" for i in range(600)).encode()
    raw = headers + basic("headers600@mime.example", "Many headers", "h600@mime.example")
    add("mime-headers-600", raw, "quarantined", False, None, "over max_headers")
    raw = basic("longline@mime.example", "x" * 20_000, "longline@mime.example")
    add("mime-header-line-20k", raw, "quarantined", False, None, "over max_header_line_length")
    received = "".join(
        f"Received: from relay{i}.example ([10.0.0.{i}]) by mx{i}.example with ESMTPS id {i:x}"
        f"; {DATE}\r\n"
        for i in range(100)
    ).encode()
    raw = received + basic("received@mime.example", "Long route", "received@mime.example")
    new("mime-received-100", raw, "a hundred Received headers")
    structured(
        "no-boundary-param",
        "multipart/mixed",
        b"--X\r\n" + TEXT_PART + b"\r\n--X--\r\n",
        "multipart without boundary",
    )
    structured(
        "never-closed",
        'multipart/mixed; boundary="OPEN"',
        b"--OPEN\r\n" + TEXT_PART + b"\r\n--OPEN\r\nContent-Type: text/plain\r\n\r\nmore",
        "closing boundary missing",
    )
    structured(
        "boundary-absent",
        'multipart/mixed; boundary="NOWHERE"',
        b"just text\r\n",
        "boundary never appears",
    )
    ctype, body = mp("PE", [TEXT_PART])
    structured(
        "preamble-epilogue",
        ctype,
        b"This is a preamble.\r\n" + body + b"epilogue junk",
        "preamble and epilogue",
    )
    structured("empty-body", "text/plain", b"", "empty body")
    raw = b"From: nobody-body@mime.example\r\nTo: support@example.com\r\nSubject: headers only"
    new("mime-headers-only", raw, "no blank line, no body")
    structured("attachment-only", *mp("AO", [att]), "only an attachment")
    signed_ctype, signed = mp(
        "SIG",
        [
            TEXT_PART,
            b"Content-Type: application/pkcs7-signature; "
            b'name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n'
            b"\r\nMIIGZwYJKoZIhvcNAQcCoIIGWDCCBlQCAQExDzANBglghkgBZQME",
        ],
        "multipart/signed",
    )
    structured(
        "smime-signed",
        signed_ctype + '; protocol="application/pkcs7-signature"',
        signed,
        "S/MIME signed",
    )
    structured(
        "smime-encrypted",
        'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        b"MIAGCSqGSIb3DQEHA6CAMIACAQAxggFOMIIBSgIBADAy\r\n",
        "S/MIME encrypted",
    )
    pgp_ctype, pgp = mp(
        "PGP",
        [
            b"Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1",
            b"Content-Type: application/octet-stream\r\n\r\n"
            b"-----BEGIN PGP MESSAGE-----\r\nhQEMA\r\n-----END PGP MESSAGE-----",
        ],
        "multipart/encrypted",
    )
    structured(
        "pgp-encrypted",
        pgp_ctype + '; protocol="application/pgp-encrypted"',
        pgp,
        "PGP/MIME encrypted",
    )
    structured(
        "digest",
        *mp(
            "DG",
            [
                b"\r\nFrom: a@b.example\r\nSubject: one\r\n\r\nfirst",
                b"\r\nFrom: c@d.example\r\nSubject: two\r\n\r\nsecond",
            ],
            "multipart/digest",
        ),
        "multipart/digest",
    )
    forwarded = (
        b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.example\r\nSubject: inner\r\n"
        b"Message-ID: <inner@y.example>\r\n\r\nThe original."
    )
    structured("forward-attached", *mp("FW", [TEXT_PART, forwarded]), "message/rfc822 inside")
    structured(
        "message-partial",
        'message/partial; id="abc@x"; number=1; total=2',
        b"Subject: part\r\n\r\nhalf",
        "message/partial",
    )
    ical = (
        b"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR"
    )
    structured(
        "calendar-invite", *mp("CAL", [TEXT_PART, ical], "multipart/alternative"), "text/calendar"
    )
    raw = basic(
        "uue@mime.example",
        "UUE",
        "uue@mime.example",
        b"begin 644 f.txt\r\n#86)C\r\n`\r\nend\r\n",
        [("Content-Transfer-Encoding", "x-uuencode")],
    )
    new("mime-cte-x-uuencode", raw, "x-uuencode transfer encoding")
    raw = basic(
        "b64junk@mime.example",
        "Bad base64",
        "b64junk@mime.example",
        b"!!!! not base64 @@@@\r\n====\r\n",
        [("Content-Transfer-Encoding", "base64")],
    )
    new("mime-base64-garbage", raw, "undecodable base64")
    raw = basic(
        "qpjunk@mime.example",
        "Bad QP",
        "qpjunk@mime.example",
        b"soft break at end =\r\n=ZZ =4 =\r\n",
        [("Content-Transfer-Encoding", "quoted-printable")],
    )
    new("mime-qp-garbage", raw, "broken quoted-printable")
    raw = basic(
        "binary@mime.example",
        "Binary",
        "binary@mime.example",
        bytes(range(256)),
        [("Content-Transfer-Encoding", "binary")],
        "application/octet-stream",
    )
    new("mime-binary-body", raw, "binary body")
    raw = basic("bogus-ct@mime.example", "Bogus type", "bogus-ct@mime.example", ctype="text")
    new("mime-content-type-no-subtype", raw, "Content-Type without subtype")
    raw = basic(
        "bogus-ct2@mime.example",
        "Bogus type",
        "bogus-ct2@mime.example",
        ctype="multipart/mixed; boundary",
    )
    new("mime-boundary-without-value", raw, "boundary parameter without value")
    exe = (
        b'Content-Type: application/x-msdownload; name="setup.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="setup.exe"\r\n\r\n'
        + base64.encodebytes(b"MZ\x90\x00" + b"\x00" * 60)
    )
    structured("exe-attachment", *mp("EXE", [TEXT_PART, exe]), "executable: stored, never run")
    zipbomb = (
        b'Content-Type: application/zip; name="bomb.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="bomb.zip"\r\n\r\n'
        + base64.encodebytes(b"PK\x03\x04" + b"\x00" * 100)
    )
    structured("zip-attachment", *mp("ZIP", [TEXT_PART, zipbomb]), "zip: stored, never unpacked")
    raw = basic("longbody@mime.example", "Long line", "longbody@mime.example", b"x" * 200_000)
    new("mime-long-body-line", raw, "200 KB body line")
    raw = basic("cr@mime.example", "CR endings", "cr@mime.example").replace(b"\r\n", b"\r")
    new("mime-cr-only", raw, "bare CR line endings")
    raw = basic("lf@mime.example", "LF endings", "lf@mime.example").replace(b"\r\n", b"\n")
    new("mime-lf-only", raw, "bare LF line endings")
