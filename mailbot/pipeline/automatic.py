"""Is this message written by a machine?  (RFC 3834 and the usual signs.)

Automatic mail still becomes a ticket or thread entry, but is never acknowledged,
so two robots cannot answer each other forever.
"""

from __future__ import annotations

from mailbot.message import InboundMail

_ROBOT_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"}
)
_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "list-owner")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def _local_part(address: str) -> str:
    return address.rsplit("@", 1)[0].lower()


def automatic_reason(mail: InboundMail, own_addresses: frozenset[str]) -> str | None:
    """Why the message counts as automatic, or None for mail written by a person."""
    auto_submitted = (mail.header("auto-submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _LIST_HEADERS:
        if mail.header(name) is not None:
            return f"mailing-list header {name}"
    if mail.header("x-autoreply") or mail.header("x-autorespond"):
        return "X-Autoreply header"
    for value in mail.headers.get("x-loop", ()):  # our own mail, come back (compose.py)
        if any(own in value.lower() for own in own_addresses):
            return f"X-Loop: {value.strip()}"
    if mail.envelope_from is not None and mail.envelope_from.strip("<> ") == "":
        return "empty return path"
    if mail.content_type == "multipart/report" or mail.report_type:
        return f"report ({mail.report_type or 'unknown type'})"
    if mail.from_address is None:
        return "no usable From address"
    if _local_part(mail.from_address) in _ROBOT_LOCAL_PARTS:
        return f"robot sender {mail.from_address}"
    if mail.from_address in own_addresses:
        return "mail from our own address"
    return None


def is_automatic(mail: InboundMail, own_addresses: frozenset[str]) -> bool:
    return automatic_reason(mail, own_addresses) is not None
