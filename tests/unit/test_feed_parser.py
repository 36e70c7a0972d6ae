"""``BoundaryParser`` parses exactly as the standard library's ``BytesFeedParser``, without
compiling a regular expression for each MIME boundary (mailbot/feed_parser.py)."""

from __future__ import annotations

import re
from email.feedparser import BytesFeedParser
from email.message import Message
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.mime_strategies import messages

from mailbot.feed_parser import BoundaryParser

TESTS = Path(__file__).parent.parent
SAMPLES = sorted((TESTS / "corpus" / "messages").glob("*.eml")) + sorted(
    (TESTS / "data" / "eml").glob("*.eml")
)


def parsed(parser: BytesFeedParser, raw: bytes) -> Message:
    parser.feed(raw)
    return parser.close()


def shape(message: Message) -> list[object]:
    """Everything the parse decided, part by part: headers, payloads, preamble and
    epilogue, defects."""
    found: list[object] = []
    for part in message.walk():
        payload = None if part.is_multipart() else part.get_payload()
        found.append(
            (
                list(part.raw_items()),
                part.get_content_type(),
                payload,
                part.preamble,
                part.epilogue,
                [type(defect).__name__ for defect in part.defects],
            )
        )
    return found


def multipart(boundary: str, *, closed: bool = True, linesep: str = "\r\n") -> bytes:
    lines = [
        "From: a@customer.example",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        "preamble",
        f"--{boundary}",
        "Content-Type: text/plain",
        "",
        "one",
        f"--{boundary}  ",  # whitespace after a boundary is allowed
        "",
        "two",
        f"--{boundary}x",  # not a boundary: a line that only starts like one
        f"--{boundary}--" if closed else "",
        "epilogue",
    ]
    return linesep.join(lines).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages())
def test_random_mime_trees_parse_as_the_standard_library_parses_them(raw: bytes) -> None:
    assert shape(parsed(BoundaryParser(), raw)) == shape(parsed(BytesFeedParser(), raw))


@settings(max_examples=200, deadline=None)
@given(
    boundary=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    closed=st.booleans(),
    linesep=st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_any_boundary_text_parses_as_the_standard_library_parses_it(
    boundary: str, closed: bool, linesep: str
) -> None:
    """Regular-expression characters, spaces, non-ASCII, empty: the boundary is text."""
    raw = multipart(boundary.replace('"', ""), closed=closed, linesep=linesep)
    assert shape(parsed(BoundaryParser(), raw)) == shape(parsed(BytesFeedParser(), raw))


PATTERN_CHARACTERS = [".*", "a|b", "(x)", "[-]", "\\", "a$", "^b", "+?", "'()+_,-./:=?"]


@pytest.mark.parametrize("boundary", PATTERN_CHARACTERS)
def test_boundaries_with_pattern_characters_split_the_parts(boundary: str) -> None:
    message = parsed(BoundaryParser(), multipart(boundary))
    parts = message.get_payload()
    assert [p.get_payload() for p in parts] == ["one", f"two\r\n--{boundary}x"]
    assert message.preamble == "preamble" and message.epilogue == "epilogue"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_the_corpus_parses_as_the_standard_library_parses_it(sample: Path) -> None:
    raw = sample.read_bytes()
    assert shape(parsed(BoundaryParser(), raw)) == shape(parsed(BytesFeedParser(), raw))


def test_no_pattern_is_compiled_for_a_boundary() -> None:
    raws = [multipart(f"=_boundary-{n}") for n in range(3)]
    for parser_class, compiles in ((BytesFeedParser, True), (BoundaryParser, False)):
        with mock.patch.object(re, "compile", wraps=re.compile) as spy:
            for raw in raws:
                assert len(parsed(parser_class(), raw).get_payload()) == 2
        patterns = [str(call.args[0]) for call in spy.call_args_list]
        assert any("boundary" in p for p in patterns) is compiles, (parser_class, patterns)
