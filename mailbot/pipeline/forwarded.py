"""Forwarded mail: a customer passing on someone else's message.  Pure.

A forward opens a ticket for the forwarder (the outer ``From``).  Some clients (Gmail,
Thunderbird) give a forward the In-Reply-To/References of the message they forward;
those name the *original* conversation, not one the forwarder has with us, so a
forward is threaded only by an explicit ticket reference in its subject, and the
Message-IDs it names are not recorded as belonging to its ticket.

A forward is recognised by the first prefix of its subject ("Fwd:", Outlook's "FW:",
German "WG:", French "TR:", Spanish "RV:", Dutch "Doorst:", Italian "I:", Nordic
"VS:"/"VB:").  "Re: Fwd: …" is a reply to a forward, not a forward.
"""

from __future__ import annotations

import re

_FORWARD_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)*(?:fwd?|fw|wg|tr|rv|enc|i|vs|vb|doorst|vl|pd)\s*(?:\[\d+\])?\s*:",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)*(?:re|aw|sv|antw|r|ref|odp)\s*(?:\[\d+\])?\s*:", re.IGNORECASE
)


def is_forward(subject: str) -> bool:
    """Whether the subject says this message is a forward (its first prefix)."""
    if not subject or _REPLY_PREFIX.match(subject):
        return False
    return _FORWARD_PREFIX.match(subject) is not None
