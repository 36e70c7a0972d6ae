"""The new content of a message: its text without the quoted history and the signature.

A reply usually carries the whole conversation below it ("On … wrote:", Outlook's
"From: … Sent: …" block, Apple Mail's quoted attribution, German "Am … schrieb …:").
mail-parser-reply (a maintained library that knows many clients and languages) finds
where the new text ends.  This module guards against its ways of losing text and fills
two small gaps:

- its signature patterns cut everything after a matching line to the end, so a cut is
  accepted only when the matching line looks like a closing ("Best regards, Bob"),
  not a sentence that happens to start with "Thanks, …";
- it strips every line, so the kept lines are taken from the original text instead,
  which keeps the indentation of stack traces and configuration snippets;
- a ``>`` quote it leaves whole is removed when it is plainly history: above a
  bottom-posted answer, or at the end below an attribution line naming an address;
  interleaved answers keep the questions they answer;
- mobile footers it misses ("Von meinem iPhone gesendet") are dropped.

Forwarded mail is kept whole: what was forwarded *is* the content.  Whenever the
library is missing, fails or finds nothing, the full text is the answer: a support
engineer may see too much, never too little.  Pure; no I/O.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Sequence

from mailbot.pipeline.forwarded import is_forward

log = logging.getLogger("mailbot.content")

# Languages whose reply headers and closings are recognised.  Danish and Swedish are left
# out of the default: their closing patterns ("Tak", "Kh", "/word") match ordinary lines.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")

# Only the first this many characters are searched for the start of the quoted history
# (the library's patterns cost about 1 ms per 1,000 characters).  In a longer text with no
# quote header among them (a pasted log, a long report) nothing is cut at all.
SEARCH_WINDOW = 16_000
# A quote header's pattern may start this many lines above its first line with a colon
# (an attribution wrapped over several lines: "On Mon, … at 10:15,\nJohn <j@x>\nwrote:").
HEADER_LINES_ABOVE = 8
# A signature (with a disclaimer below it) starts within this many characters of the end.
SIGNATURE_TAIL = 4_000
# A signature cut is accepted only when its first line is this short (a closing line).
MAX_CLOSING_LINE = 60
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+")
# What every quote header of the library's languages has: a line ending in a colon ("On …
# wrote:", "Am … schrieb …:", "… 写道："), a line starting with a word or two and a colon
# ("From:", "Von:", "De :", "보낸 사람:"), or a dashed separator ("-----Original Message").
# Text without any such line cannot contain one.
_HEADER_LINE = re.compile(r"[>* \t]*(?:[^\W\d_][^\n:]{0,24})?:|.*[:\uff1a][ \t*]*$")
# The library's normalisation puts a line break before an Outlook separator line (a
# blank line, then 32 or more "_" or "-") that follows text; its pattern tries every
# character.  Such a separator always contains this, which a search finds at C speed.
_OUTLOOK_SEPARATOR_HINT = re.compile(r"\n\n ?[_-]{32}")
# Mobile footers the library's patterns miss (it knows "Sent from my …", "Gesendet von …").
_PHONE_FOOTER = re.compile(
    r"(?:Von meinem|Vom meinem) [\w .-]{1,40} gesendet\.?|Envoy\u00e9 de mon [\w .-]{1,40}",
    re.IGNORECASE,
)


def first_header_candidate(text: str) -> int | None:
    """Where the first line that could start a quote header begins (None: there is none).

    Only lines with a colon (or a dashed separator) are looked at.
    """
    found: list[int] = []
    dashes = text.find("-----")
    if dashes >= 0:
        found.append(text.rfind("\n", 0, dashes) + 1)
    for colon in (":", "\uff1a"):
        position = text.find(colon)
        while position >= 0:
            start = text.rfind("\n", 0, position) + 1
            end = text.find("\n", position)
            end = len(text) if end < 0 else end
            if _HEADER_LINE.match(text, start, end):
                found.append(start)
                break
            position = text.find(colon, end)
    return min(found) if found else None


def may_have_quote_header(text: str) -> bool:
    """Whether any line could start a quote header (only lines with a colon are looked at)."""
    return first_header_candidate(text) is not None


def normalized(text: str) -> str:
    """The text as mail-parser-reply normalises it (``EmailMessage._normalize_text``:
    CRLF to LF, every line stripped, a break before an Outlook separator), for the
    library's patterns, in a fraction of the time.  Tested to stay equal to it."""
    from mailparser_reply.constants import OUTLOOK_MAIL_SEPARATOR

    text = "\n".join([line.strip() for line in text.replace("\r\n", "\n").split("\n")])
    if _OUTLOOK_SEPARATOR_HINT.search(text) is None:
        return text
    separator = f"([^\n]){OUTLOOK_MAIL_SEPARATOR}"
    # As the library calls it: it passes re.MULTILINE (8) where the count goes.
    return re.sub(separator, "\\1\n", text, count=int(re.MULTILINE))


def _lines_before(text: str, position: int, count: int) -> int:
    """The start of the line ``count`` lines above the one at ``position``."""
    for _ in range(count):
        if position <= 0:
            return 0
        position = text.rfind("\n", 0, position - 1) + 1
    return position


def _latest_reply(text: str, languages: Sequence[str]) -> tuple[str, bool] | None:
    """(newest reply without signature, whether a quote header was found); None: no answer.

    The library splits the whole text at every quote header and looks for signatures in
    every part; only the newest part is wanted.  So its header pattern is searched from
    a few lines above the first line that could be part of a header (the pattern costs
    about 1 ms per 1,000 characters it passes) and stops at the first match.  A text
    that starts with a quote header (no reply above it) goes through the library whole.
    """
    try:
        from mailparser_reply.parser import EmailMessage
    except ImportError:  # pragma: no cover - a declared dependency; degrade, don't fail
        log.warning("mail-parser-reply is not installed: threads show the full text")
        return None
    try:
        header_regex, signature_regex = _reply_patterns(tuple(languages))
        plain = normalized(text)
        candidate = first_header_candidate(plain)
        header = None
        if candidate is not None:
            start = _lines_before(plain, candidate, HEADER_LINES_ABOVE)
            header = header_regex.search(plain, start)
        if header is None:
            body = _without_signature(plain.strip(), signature_regex)
            return _without_phone_footer(body), False
        first_group = next((group for group in header.groups() if group), header.group())
        newest = plain[: plain.find(first_group)].strip()
        if newest:
            body = _without_signature(newest, signature_regex)
            return _without_phone_footer(body), True
        # A quote header first: the library decides what the reply is.
        message = EmailMessage(text=text, languages=list(languages), keep_hyphen_lists=True)
        message.read()
    except Exception:  # a library bug on odd input must not stop the message
        log.exception("mail-parser-reply failed; keeping the full text")
        return None
    if not message.replies:
        return None
    first = message.replies[0]
    body = _without_phone_footer(_without_signature(first.full_body, message.SIGNATURE_REGEX))
    return body, len(message.replies) > 1 or bool(first.headers)


@functools.cache
def _reply_patterns(languages: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """mail-parser-reply's quote header and signature patterns for ``languages``.

    Taken from a message without text (its normalisation of a long text costs more
    than ours, ``normalized``), once: the library builds them for each message object,
    a tenth of quote stripping when made anew for each (callgrind).
    """
    from mailparser_reply.parser import EmailMessage

    patterns = EmailMessage(text="", languages=list(languages), keep_hyphen_lists=True)
    return patterns.HEADER_REGEX, patterns.SIGNATURE_REGEX


def _without_signature(body: str, signature: re.Pattern[str]) -> str:
    """``body`` cut at the first closing-like line where a signature starts.

    The library's pattern runs from the matching line to the end of the text, so a
    match whose first line is a sentence ("Thanks, I tried that and …") must not cut:
    only lines of at most ``MAX_CLOSING_LINE`` characters can start a signature, and
    only those are searched, each with the blank lines above it (where the pattern's
    ``\\s*`` or a separator's blank line begins).  Searching every position of the
    text instead cost a fifth of preparing a message.  Only the last ``SIGNATURE_TAIL``
    characters are looked at: a signature closes the text.
    """
    floor = 0
    if len(body) > SIGNATURE_TAIL:
        floor = body.find("\n", len(body) - SIGNATURE_TAIL) + 1
    for start, end in _short_lines(body, floor):
        window = start
        while window > 0 and body[window - 1].isspace():
            window -= 1
        found = signature.search(body, window, end + 1)  # the line's newline included
        if found is not None:
            text = found.group()
            if found.start() + len(text) - len(text.lstrip()) == start:
                return body[:start].rstrip()
    return body


def _short_lines(body: str, position: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-blank line from ``position`` on that could be a closing."""
    while position < len(body):
        end = body.find("\n", position)
        end = len(body) if end < 0 else end
        if 0 < end - position <= MAX_CLOSING_LINE and not body[position].isspace():
            yield position, end
        position = end + 1


def _without_phone_footer(body: str) -> str:
    """Drop a last line such as "Von meinem iPhone gesendet" (missing from the library)."""
    head, _, last = body.rstrip().rpartition("\n")
    if _PHONE_FOOTER.fullmatch(last.strip()):
        return head.rstrip()
    return body


def _original_lines(text: str, wanted: str) -> str | None:
    """The lines of ``text`` that ``wanted`` (a stripped copy of a part of it) came from.

    Matches stripped lines in order; None when they cannot all be found (the library
    changed a line), in which case the caller uses the library's text as it is.
    """
    original = text.replace("\r\n", "\n").split("\n")
    stripped = [line.strip() for line in original]
    targets = [target for target in map(str.strip, wanted.split("\n")) if target]
    if not targets:
        return None
    positions: list[int] = []
    index = 0
    for target in targets:
        try:
            index = stripped.index(target, index)  # the next line that is the target
        except ValueError:
            return None
        positions.append(index)
        index += 1
    return "\n".join(line.rstrip() for line in original[positions[0] : positions[-1] + 1])


def new_content(text: str, subject: str = "", languages: Sequence[str] = DEFAULT_LANGUAGES) -> str:
    """The text the sender wrote in this message; the full text when that can't be told."""
    full = text.replace("\r\n", "\n").strip("\n")
    if not full.strip() or is_forward(subject):
        return full
    head = full
    if len(full) > SEARCH_WINDOW:
        cut = full.rfind("\n", 0, SEARCH_WINDOW)
        head = full[: cut if cut > 0 else SEARCH_WINDOW]
    found = _latest_reply(head, languages)
    if found is None:
        return full
    body, quote_found = found
    if head is not full and not quote_found:
        return full  # the end of the text (and any signature) was not searched
    body = _original_lines(full, body) or body
    body = _trim_quoted_blocks(body)
    if not any(line.strip() and not _is_quoted(line) for line in body.split("\n")):
        return full  # nothing new (an empty reply, or only quotes): show everything
    return body


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _trim_quoted_blocks(body: str) -> str:
    """Remove a quote the library left whole: above a bottom-posted answer, or below a
    reply whose attribution line it doesn't know (Gmail for Android's German "Am …
    hat X <x@example.com> geschrieben:").  Interleaved answers keep their quotes: there
    the quoted questions are the context of the answers.
    """
    if ">" not in body:
        return body  # no quoted line
    lines = body.split("\n")
    quoted = [i for i, line in enumerate(lines) if _is_quoted(line)]
    if not quoted:
        return body
    first, last = quoted[0], quoted[-1]
    block = lines[first : last + 1]
    if not all(_is_quoted(line) or not line.strip() for line in block):
        return body  # interleaved
    before, after = lines[:first], lines[last + 1 :]
    if any(line.strip() for line in after) and not any(line.strip() for line in before):
        return "\n".join(after).strip("\n")  # bottom posting: the answer is below
    if any(line.strip() for line in before) and not any(line.strip() for line in after):
        kept = _without_attribution(before)
        if len(kept) < len(before):
            return "\n".join(kept).rstrip()
    return body


def _without_attribution(lines: list[str]) -> list[str]:
    """Lines above a quote, without the attribution line that introduces it.

    Only a line ending in ":" that names an e-mail address counts (or two, when a
    client wrapped it: "… Support <" / "support@example.com>:"): "Here is the log:"
    above a quoted log is the customer's own text and stays.
    """
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    if not end or not lines[end - 1].rstrip().endswith(":"):
        return lines
    last = lines[end - 1].strip()
    if _ADDRESS.search(last):
        return lines[: end - 1]
    previous = lines[end - 2].strip() if end >= 2 else ""
    wrapped = _ADDRESS.search(f"{previous}{last}") or _ADDRESS.search(f"{previous} {last}")
    if previous and not previous.endswith((".", "!", "?")) and wrapped:
        return lines[: end - 2]
    return lines
