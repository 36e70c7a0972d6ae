"""The standard library's ``BytesFeedParser``, without a regular expression per boundary.

For every multipart the stdlib compiles ``(?P<sep>--boundary)(?P<end>--)?…$`` anew:
boundaries are unique per message, so each one is a fresh compile (about a tenth of
parsing mail, measured on the benchmark's workload) and an entry in ``re``'s cache,
which fills its 512 entries with patterns nobody uses again.

``BoundaryParser`` runs the stdlib's own ``_parsegen`` (the same code object) with a
``re`` of its own that answers that one pattern with ``BoundaryMatcher``: a prefix
test on the line, then one precompiled pattern for what may follow the boundary.  The
groups ``_parsegen`` reads (``end``, ``linesep``) come out the same.  Any other pattern
(a future Python that builds it differently) is compiled as before.
"""

from __future__ import annotations

import re
import types
from email import feedparser
from typing import Any

_PREFIX = "(?P<sep>"
_SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_BOUNDARY = re.compile(_SUFFIX[1:])
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class BoundaryMatcher:
    """``re.compile(_PREFIX + re.escape(separator) + _SUFFIX)``'s ``match``, without
    the compile."""

    def __init__(self, separator: str) -> None:
        self._separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self._separator):
            return None
        return _AFTER_BOUNDARY.match(line, len(self._separator))


class _BoundaryRe:
    """What ``_parsegen`` calls of ``re``: ``escape`` and ``compile``."""

    escape = staticmethod(re.escape)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> re.Pattern[str] | BoundaryMatcher:
        if flags or not (pattern.startswith(_PREFIX) and pattern.endswith(_SUFFIX)):
            return re.compile(pattern, flags)
        escaped = pattern[len(_PREFIX) : -len(_SUFFIX)]
        return BoundaryMatcher(_ESCAPED.sub(r"\1", escaped))  # re.escape undone


def _parsegen_with(re_module: Any) -> types.FunctionType:
    """The stdlib's ``FeedParser._parsegen`` with ``re_module`` as its ``re``."""
    original = feedparser.FeedParser._parsegen
    namespace = {**vars(feedparser), "re": re_module}
    return types.FunctionType(
        original.__code__, namespace, original.__name__, original.__defaults__
    )


class BoundaryParser(feedparser.BytesFeedParser):
    _parsegen = _parsegen_with(_BoundaryRe)
