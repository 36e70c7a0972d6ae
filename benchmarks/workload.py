"""A generated, reproducible support-mail workload (raw RFC 5322 bytes).

The mix the benchmark promises: sizes 1-50 KB (log-uniform: most mail is small),
10% with an attachment, 30% replies to an earlier message of the same sender (by
In-Reply-To, by References, or both), 5% automatic mail (Auto-Submitted or Precedence:
bulk), a fixed set of senders, and the severity tags [Emergency], [High] and [Normal]
next to untagged subjects.  Messages are built as plain bytes (no ``email`` objects):
generating 10,000 of them must cost far less than processing them.

Every message knows what the daemon should make of it (``expects_ack``, ``root``), which
is what the correctness checks compare against.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

SUPPORT = "support@example.com"
KB = 1024

_PROSE = (
    "the export job fails after upgrade node cluster timeout error log attached please "
    "help we see since yesterday production dashboard slow login users cannot reach "
    "report invoice license server restart backup database replication lag queue "
    "worker memory disk full certificate expired proxy gateway webhook retry again "
    "customer portal configuration setting documentation version release patch "
    "rollback latency spike region outage partial degraded api token permission"
)
_WORDS = _PROSE.split()
_SEVERITIES = (("emergency", 0.05), ("high", 0.20), ("normal", 0.15), ("untagged", 0.60))
_TAGS = {"emergency": "[Emergency] ", "high": "[High] ", "normal": "[Normal] ", "untagged": ""}
_ATTACHMENT_TYPES = (
    ("application/pdf", "report.pdf"),
    ("image/png", "screenshot.png"),
    ("text/csv", "export.csv"),
    ("application/zip", "logs.zip"),
)
_BASE_DATE = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Mail:
    index: int
    message_id: str  # without angle brackets
    sender: str
    raw: bytes
    is_reply: bool
    root: str  # Message-ID of the message that opened the ticket (itself for an original)
    automatic: bool
    severity: str
    has_attachment: bool
    threaded_by: str  # "" | "in-reply-to" | "references" | "both"

    @property
    def expects_ack(self) -> bool:
        """A new ticket from a person is acknowledged; replies and robots are not."""
        return not self.is_reply and not self.automatic


@dataclass
class Workload:
    name: str
    mails: list[Mail] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.mails)

    def __iter__(self) -> Iterator[Mail]:
        return iter(self.mails)

    @property
    def originals(self) -> list[Mail]:
        return [m for m in self.mails if not m.is_reply]

    @property
    def expected_acks(self) -> list[Mail]:
        return [m for m in self.mails if m.expects_ack]

    @property
    def total_bytes(self) -> int:
        return sum(len(m.raw) for m in self.mails)

    def summary(self) -> dict[str, object]:
        n = len(self.mails) or 1
        return {
            "messages": len(self.mails),
            "originals": len(self.originals),
            "replies": sum(m.is_reply for m in self.mails),
            "automatic": sum(m.automatic for m in self.mails),
            "with_attachment": sum(m.has_attachment for m in self.mails),
            "expected_acks": len(self.expected_acks),
            "senders": len({m.sender for m in self.mails}),
            "severities": sorted({m.severity for m in self.mails}),
            "mean_size_bytes": round(self.total_bytes / n),
            "max_size_bytes": max((len(m.raw) for m in self.mails), default=0),
        }


def sender_address(number: int) -> str:
    return f"customer{number:03d}@client{number % 17:02d}.example"


def _paragraph_pool(rng: random.Random, count: int = 400) -> list[str]:
    """Wrapped prose paragraphs (~300-700 bytes) to assemble bodies from quickly."""
    pool = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(50, 110))]
        words[0] = words[0].capitalize()
        lines, line = [], ""
        for word in words:
            if len(line) + len(word) + 1 > 72:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line + ".")
        pool.append("\r\n".join(lines))
    return pool


class Generator:
    """Builds workloads; one instance per benchmark run (the paragraph pool is shared)."""

    def __init__(self, seed: int = 1, senders: int = 100) -> None:
        self.seed = seed
        self.senders = senders
        self.pool = _paragraph_pool(random.Random(seed))

    def _body(self, rng: random.Random, size: int) -> str:
        parts: list[str] = []
        total = 0
        while total < size:
            paragraph = rng.choice(self.pool)
            parts.append(paragraph)
            total += len(paragraph) + 4
        return "\r\n\r\n".join(parts)[: max(size, 1)].rstrip() + "\r\n"

    def build(
        self,
        name: str,
        count: int,
        *,
        reply_share: float = 0.30,
        automatic_share: float = 0.05,
        attachment_share: float = 0.10,
        html_share: float = 0.20,
        min_size: int = 1 * KB,
        max_size: int = 50 * KB,
    ) -> Workload:
        """``count`` messages whose Message-IDs are unique to ``name``."""
        rng = random.Random(f"{self.seed}:{name}")
        workload = Workload(name)
        history: dict[str, list[Mail]] = {}
        for index in range(count):
            wants_reply = rng.random() < reply_share and bool(history)
            if wants_reply:
                sender = rng.choice(sorted(history))
            else:
                sender = sender_address(rng.randrange(self.senders))
            parent = rng.choice(history[sender]) if wants_reply else None
            size = int(min_size * (max_size / min_size) ** rng.random())
            mail = self._mail(
                rng,
                name=name,
                index=index,
                sender=sender,
                parent=parent,
                size=size,
                automatic=rng.random() < automatic_share,
                attachment=rng.random() < attachment_share,
                html=rng.random() < html_share,
            )
            history.setdefault(sender, []).append(mail)
            workload.mails.append(mail)
        return workload

    def _severity(self, rng: random.Random) -> str:
        pick = rng.random()
        for label, share in _SEVERITIES:
            if pick < share:
                return label
            pick -= share
        return "untagged"

    def _mail(
        self,
        rng: random.Random,
        *,
        name: str,
        index: int,
        sender: str,
        parent: Mail | None,
        size: int,
        automatic: bool,
        attachment: bool,
        html: bool,
    ) -> Mail:
        domain = sender.split("@", 1)[1]
        message_id = f"bench-{name}-{index:06d}.{rng.getrandbits(32):08x}@{domain}"
        number = int(sender[8:11])
        display = f"Customer {number:03d}"
        if number % 10 == 7:  # some non-ASCII names, as RFC 2047 encoded words
            display = "=?utf-8?q?J=C3=BCrgen_M=C3=BCller_" + f"{number:03d}?="
        headers = [
            f"From: {display} <{sender}>",
            f"To: Support <{SUPPORT}>",
            f"Date: {format_datetime(_BASE_DATE + timedelta(seconds=index))}",
            f"Message-ID: <{message_id}>",
        ]
        threaded_by = ""
        if parent is None:
            severity = self._severity(rng)
            topic = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7)))
            subject = f"{_TAGS[severity]}{topic.capitalize()} (case {name}-{index})"
            root = message_id
        else:
            severity = parent.severity
            root = parent.root
            original_subject = _subject_of(parent.raw)
            subject = (
                original_subject
                if original_subject.startswith("Re: ")
                else (f"Re: {original_subject}")
            )
            threaded_by = rng.choice(("both", "both", "in-reply-to", "references"))
            chain = [root] if parent.message_id == root else [root, parent.message_id]
            if threaded_by in ("both", "in-reply-to"):
                headers.append(f"In-Reply-To: <{parent.message_id}>")
            if threaded_by in ("both", "references"):
                headers.append("References: " + " ".join(f"<{m}>" for m in chain))
        headers.append(f"Subject: {subject}")
        if automatic:
            headers.append(
                "Auto-Submitted: auto-generated" if rng.random() < 0.5 else "Precedence: bulk"
            )
        headers.append("MIME-Version: 1.0")
        body_budget = size
        attachment_part = ""
        if attachment:
            content_type, filename = rng.choice(_ATTACHMENT_TYPES)
            raw_size = max(256, int(size * rng.uniform(0.4, 0.8) * 3 / 4))
            encoded = base64.encodebytes(rng.randbytes(raw_size)).decode().replace("\n", "\r\n")
            attachment_part = (
                f'Content-Type: {content_type}; name="{filename}"\r\n'
                f'Content-Disposition: attachment; filename="{filename}"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n" + encoded
            )
            body_budget = max(200, size - len(encoded))
        if html:  # the HTML alternative repeats the text
            body_budget = max(200, body_budget // 2)
        text = (
            f"Hello support,\r\n\r\n{self._body(rng, body_budget)}\r\n"
            f"Regards,\r\nCustomer {number:03d}\r\n"
        )
        if parent is not None:
            quoted = "\r\n".join("> " + line for line in _body_preview(parent.raw))
            text += f"\r\nOn an earlier date, {sender} wrote:\r\n{quoted}\r\n"
        body = _body_part(text, html, f"=_alt_{index:06d}_{rng.getrandbits(24):06x}")
        if attachment_part:
            boundary = f"=_mixed_{index:06d}_{rng.getrandbits(24):06x}"
            content = (
                f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
                f"--{boundary}\r\n{body}\r\n--{boundary}\r\n{attachment_part}\r\n--{boundary}--\r\n"
            )
        else:
            content = body
        raw = ("\r\n".join(headers) + "\r\n" + content).encode("ascii")
        return Mail(
            index=index,
            message_id=message_id,
            sender=sender,
            raw=raw,
            is_reply=parent is not None,
            root=root,
            automatic=automatic,
            severity=severity,
            has_attachment=attachment,
            threaded_by=threaded_by,
        )


def _body_part(text: str, html: bool, boundary: str) -> str:
    """The text part, or text + HTML as multipart/alternative (headers included)."""
    plain = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    if not html:
        return plain + text
    paragraphs = "".join(f"<p>{p}</p>\r\n" for p in text.split("\r\n\r\n"))
    markup = f"<html><body>\r\n{paragraphs}</body></html>\r\n"
    return (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n{plain}{text}\r\n--{boundary}\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        f"{markup}\r\n--{boundary}--\r\n"
    )


def _subject_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.startswith(b"Subject: "):
            return line[9:].decode("ascii")
        if not line:
            break
    return ""


def _body_preview(raw: bytes, lines: int = 6) -> list[str]:
    """A few lines of an earlier message's first text part, for the quoted reply."""
    start = raw.find(b"Hello support,")
    if start < 0:
        return []
    return raw[start:].decode("ascii").split("\r\n")[:lines]


def warm_up_mail() -> Mail:
    """A short new request, acknowledged, that no phase counts (``Rig.warm_up``)."""
    sender = "warm-up@client00.example"
    message_id = f"bench-warm-up-{random.getrandbits(48):012x}@client00.example"
    raw = (
        f"From: Warm-up <{sender}>\r\nTo: {SUPPORT}\r\nSubject: Warm-up request\r\n"
        f"Message-ID: <{message_id}>\r\nDate: {format_datetime(_BASE_DATE)}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello, this message starts the benchmark.\r\n"
    ).encode()
    return Mail(0, message_id, sender, raw, False, message_id, False, "normal", False, "")


def big_message(sender: str, size_bytes: int, attachment_bytes: int, seed: int = 1) -> Mail:
    """One message of about ``size_bytes`` on the wire with a binary attachment."""
    rng = random.Random(seed)
    message_id = f"bench-big-{rng.getrandbits(32):08x}@{sender.split('@', 1)[1]}"
    encoded = base64.encodebytes(rng.randbytes(attachment_bytes)).replace(b"\n", b"\r\n")
    filler = max(1000, size_bytes - len(encoded) - 2000)
    block = b"Hello support, the full log is attached.\r\n" + b"x" * 70 + b"\r\n"
    text = block * (filler // len(block) + 1)
    boundary = b"=_big_boundary"
    raw = (
        f"From: Big Sender <{sender}>\r\nTo: {SUPPORT}\r\n"
        f"Subject: [High] Core dump attached\r\nMessage-ID: <{message_id}>\r\n"
        f"Date: {format_datetime(_BASE_DATE)}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary.decode()}"\r\n\r\n'
    ).encode() + (
        b"--"
        + boundary
        + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text
        + b"\r\n--"
        + boundary
        + b'\r\nContent-Type: application/octet-stream; name="core.bin"\r\n'
        b'Content-Disposition: attachment; filename="core.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"\r\n--" + boundary + b"--\r\n"
    )
    return Mail(
        index=0,
        message_id=message_id,
        sender=sender,
        raw=raw,
        is_reply=False,
        root=message_id,
        automatic=False,
        severity="high",
        has_attachment=True,
        threaded_by="",
    )
