"""HTML-only mail as readable text, keeping links, lists, tables and quotes.

inscriptis lays HTML out as text the way a browser would (newsletter layout tables
become paragraphs, data tables keep their columns, lists their bullets and numbers)
and shows links as ``[text](url)``.  Its annotations tell where ``<blockquote>``
elements are; those lines get ``> `` markers (one per nesting level) so that the quote
detection of ``mailbot.pipeline.content`` sees quoted history in HTML-only mail just
as in plain text.  Images show their alt text, if any; ``mailto:`` links show only
the address.

inscriptis (and lxml under it, about 5 MB) is imported on the first HTML-only mail,
not with this module: much mail has a text part, and every process imports this.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inscriptis.model.config import ParserConfig

_BLANK_RUN = re.compile(r"\n{3,}")
_MAILTO = re.compile(r"\[([^\[\]\n]*)\]\(mailto:[^()\s]*\)")
_QUOTE = "quote"


def _config() -> ParserConfig:
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    return ParserConfig(
        css=CSS_PROFILES["strict"],
        display_links=True,
        display_images=True,
        annotation_rules={"blockquote": [_QUOTE]},
    )


def _mark_quotes(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Prefix each line inside ``n`` nested quote spans with ``n`` × ``> ``."""
    quotes = [(start, end) for start, end, label in spans if label == _QUOTE]
    if not quotes:
        return text
    out = []
    offset = 0
    for line in text.split("\n"):
        start, end = offset, offset + len(line)
        depth = sum(
            1 for q_start, q_end in quotes if q_start <= start < q_end or (start < q_start < end)
        )
        out.append(("> " * depth + line) if depth else line)
        offset = end + 1
    return "\n".join(out)


def html_to_text(html: str) -> str:
    if not html.strip():
        return ""
    from inscriptis import get_annotated_text

    result = get_annotated_text(html, _config())
    text = _mark_quotes(result["text"], result.get("label", []))
    text = _MAILTO.sub(lambda m: m.group(1), text)
    lines = [line.replace("\xa0", " ").rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")
