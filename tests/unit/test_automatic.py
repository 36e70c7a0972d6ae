from pathlib import Path

import pytest

from mailbot.message import parse
from mailbot.pipeline.automatic import automatic_reason

DATA = Path(__file__).parent.parent / "data" / "eml"
OWN = frozenset({"support@example.com"})


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("out_of_office.eml", "Auto-Submitted"),
        ("oof_precedence.eml", "Precedence"),
        ("mailing_list.eml", "mailing-list"),
        ("bounce_dsn.eml", "report"),
        ("noreply.eml", "robot sender"),
        ("missing_from.eml", "no usable From"),
    ],
)
def test_automatic_mail_is_recognised(name: str, fragment: str) -> None:
    reason = automatic_reason(parse((DATA / name).read_bytes()), OWN)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("name", ["emergency.eml", "html_only.eml", "attachment_rfc2231.eml"])
def test_mail_from_people_is_not_automatic(name: str) -> None:
    assert automatic_reason(parse((DATA / name).read_bytes()), OWN) is None


def test_empty_return_path_is_automatic() -> None:
    mail = parse((DATA / "emergency.eml").read_bytes(), envelope_from="")
    assert automatic_reason(mail, OWN) == "empty return path"


def test_auto_submitted_no_is_a_person() -> None:
    raw = (
        (DATA / "emergency.eml")
        .read_bytes()
        .replace(b"Subject:", b"Auto-Submitted: no\r\nSubject:")
    )
    assert automatic_reason(parse(raw), OWN) is None


def test_mail_from_our_own_address_is_automatic() -> None:
    raw = (
        (DATA / "emergency.eml")
        .read_bytes()
        .replace(b"alice@customer.example", b"SUPPORT@example.com")
    )
    assert automatic_reason(parse(raw), OWN) == "mail from our own address"
