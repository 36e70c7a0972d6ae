import pytest

from mailbot.pipeline.severity import Severity, severity, severity_tag, ticket_title
from mailbot.pipeline.threading_rules import reference_pattern


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[Emergency] Pipeline down", Severity.EMERGENCY),
        ("[High] Dashboard slow", Severity.HIGH),
        ("[Normal] How do I export?", Severity.NORMAL),
        ("[Low] Feature idea", Severity.LOW),
        ("How do I export?", Severity.NORMAL),
        ("[EMERGENCY] shouting", Severity.EMERGENCY),
        ("[emergency] whisper", Severity.EMERGENCY),
        ("Re: Fwd: AW: [High] after prefixes", Severity.HIGH),
        ("Outage in prod [Emergency]", Severity.EMERGENCY),
        ("[ High ] inner spaces", Severity.HIGH),
        ("[Low] then [High]: the most urgent wins", Severity.HIGH),
        ("Emergency without brackets", Severity.NORMAL),
        ("(Emergency) wrong brackets", Severity.NORMAL),
        ("[Emergencies] not the keyword", Severity.NORMAL),
        ("", Severity.NORMAL),
    ],
)
def test_severity_from_subject(subject: str, expected: Severity) -> None:
    assert severity(subject) == expected


def test_no_tag_is_none_so_replies_do_not_downgrade() -> None:
    assert severity_tag("Re: [SUP-1001] thanks") is None


@pytest.mark.parametrize(
    ("subject", "title"),
    [
        ("[Emergency] Pipeline down", "Pipeline down"),
        ("Re: [High]  Dashboard   slow", "Dashboard slow"),
        ("Fwd: [SUP-1001] [Low] Question", "Question"),
        ("[Emergency]", "(no subject)"),
        ("AW: WG: Frage [Normal]", "Frage"),
    ],
)
def test_title_strips_tags_prefixes_and_reference(subject: str, title: str) -> None:
    assert ticket_title(subject, reference_pattern("SUP")) == title
