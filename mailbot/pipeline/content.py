"""The new content of a message: its text without the quoted history and the signature.

A reply usually carries the whole conversation below it ("On … wrote:", Outlook's
"From: … Sent: …" block, Apple Mail's quoted attribution, German "Am … schrieb …:").
mail-parser-reply (a maintained library that knows many clients and languages) finds
where the new text ends; this module only guards against its two ways of losing text:

- its signature patterns cut everything after a matching line to the end, so a cut is
  accepted only when the matching line looks like a closing ("Best regards, Bob"),
  not a sentence that happens to start with "Thanks, …";
- it strips every line, so the kept lines are taken from the original text instead,
  which keeps the indentation of stack traces and configuration snippets.

Forwarded mail is kept whole: what was forwarded *is* the content.  Whenever the
library is missing, fails or finds nothing, the full text is the answer: a support
engineer may see too much, never too little.  Pure; no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mailbot.pipeline.forwarded import is_forward

log = logging.getLogger("mailbot.content")

# Languages whose reply headers and closings are recognised.  Danish and Swedish are left
# out of the default: their closing patterns ("Tak", "Kh", "/word") match ordinary lines.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")

# Larger texts (logs pasted into a mail) are kept whole rather than searched.
MAX_SEARCHED_CHARS = 200_000
# A signature cut is accepted only when its first line is this short (a closing line).
MAX_CLOSING_LINE = 60


def _latest_reply(text: str, languages: Sequence[str]) -> tuple[str, str] | None:
    """(body without signature, body with signature) of the newest reply; None: no answer."""
    try:
        from mailparser_reply.parser import EmailMessage
    except ImportError:  # pragma: no cover - a declared dependency; degrade, don't fail
        log.warning("mail-parser-reply is not installed: threads show the full text")
        return None
    try:
        message = EmailMessage(text=text, languages=list(languages), keep_hyphen_lists=True).read()
    except Exception:  # a library bug on odd input must not stop the message
        log.exception("mail-parser-reply failed; keeping the full text")
        return None
    if not message.replies:
        return None
    reply = message.replies[0]
    full_body = reply.full_body
    body = full_body
    if reply.signatures:
        first_line = reply.signatures.strip().split("\n", 1)[0]
        if len(first_line) <= MAX_CLOSING_LINE and full_body.endswith(reply.signatures):
            body = full_body[: -len(reply.signatures)].rstrip()
    return body, full_body


def _original_lines(text: str, wanted: str) -> str | None:
    """The lines of ``text`` that ``wanted`` (a stripped copy of a part of it) came from.

    Matches stripped lines in order; None when they cannot all be found (the library
    changed a line), in which case the caller uses the library's text as it is.
    """
    original = text.replace("\r\n", "\n").split("\n")
    targets = [line.strip() for line in wanted.split("\n") if line.strip()]
    if not targets:
        return None
    positions: list[int] = []
    index = 0
    for target in targets:
        while index < len(original) and original[index].strip() != target:
            index += 1
        if index == len(original):
            return None
        positions.append(index)
        index += 1
    return "\n".join(line.rstrip() for line in original[positions[0] : positions[-1] + 1])


def new_content(
    text: str, subject: str = "", languages: Sequence[str] = DEFAULT_LANGUAGES
) -> str:
    """The text the sender wrote in this message; the full text when that can't be told."""
    full = text.strip("\n")
    if not full.strip() or len(full) > MAX_SEARCHED_CHARS or is_forward(subject):
        return full
    found = _latest_reply(full, languages)
    if found is None:
        return full
    body, _ = found
    if not body.strip():
        return full  # nothing new (an empty reply, or only quotes): show everything
    return _original_lines(full, body) or body
