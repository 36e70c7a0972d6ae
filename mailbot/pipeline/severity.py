"""Severity from the subject line, and the ticket title without the tag."""

from __future__ import annotations

import re
from enum import IntEnum


class Severity(IntEnum):
    """Lower number = more urgent, as in the support policy."""

    EMERGENCY = 1
    HIGH = 2
    NORMAL = 3
    LOW = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Severity:
        return cls[label.upper()]


_TAG = re.compile(r"\[\s*(emergency|high|normal|low)\s*\]", re.IGNORECASE)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|r|tr|rif|enc|res)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+",
    re.IGNORECASE,
)


def severity_tag(subject: str) -> Severity | None:
    """The most urgent tag anywhere in the subject, or None when there is none."""
    found = [Severity[m.group(1).upper()] for m in _TAG.finditer(subject)]
    return min(found) if found else None


def severity(subject: str) -> Severity:
    """The severity a new ticket gets: its tag, else Normal."""
    return severity_tag(subject) or Severity.NORMAL


def strip_reply_prefixes(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()


def ticket_title(subject: str, ticket_ref: re.Pattern[str] | None = None) -> str:
    """The subject without reply prefixes, severity tags or our ticket reference."""
    title = strip_reply_prefixes(subject)
    title = _TAG.sub(" ", title)
    if ticket_ref is not None:
        title = ticket_ref.sub(" ", title)
    title = " ".join(strip_reply_prefixes(title).split())
    return title or "(no subject)"
