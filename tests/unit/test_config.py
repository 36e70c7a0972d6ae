from pathlib import Path

import pytest

from mailbot.config import load_settings, parse_settings
from mailbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {
    "mailbot": {"support_address": "support@example.com"},
    "outbound": {"from_address": "s@e.com"},
}


def test_example_config_is_valid_and_documents_every_section() -> None:
    settings = load_settings(REPO / "config.example.toml")
    assert settings.mailbot.support_address == "support@example.com"
    assert settings.intake.smtp.port == 8025
    assert settings.outbound.transport == "maildir"
    assert settings.database_url().startswith("sqlite:////")
    assert settings.database_url().endswith("/var/mailbot.db")


def test_example_config_mentions_every_key_of_the_schema() -> None:
    text = (REPO / "config.example.toml").read_text()
    settings = load_settings(REPO / "config.example.toml")

    def keys(model, prefix=""):  # type: ignore[no-untyped-def]
        from pydantic import BaseModel

        for name, _ in type(model).model_fields.items():
            if name == "base_dir":
                continue
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                yield from keys(value, f"{prefix}{name}.")
            elif not isinstance(value, dict):
                yield f"{prefix}{name}", name

    missing = [dotted for dotted, name in keys(settings) if f"{name} =" not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (
            {**MINIMAL, "mailbot": {"support_address": "x@y.z", "typo": 1}},
            "unknown key 'mailbot.typo'",
        ),
        ({"outbound": {"from_address": "s@e.com"}}, "missing required key 'mailbot'"),
        ({**MINIMAL, "intake": {"smtp": {"port": "eighty"}}}, "key 'intake.smtp.port'"),
        ({**MINIMAL, "intake": {"smtp": {"protocol": "pop3"}}}, "key 'intake.smtp.protocol'"),
        ({**MINIMAL, "mailbot": {"support_address": "not-an-address"}}, "mailbot.support_address"),
        (
            {**MINIMAL, "mailbot": {"support_address": "a@b", "ticket_prefix": "s-1"}},
            "ticket_prefix",
        ),
    ],
)
def test_bad_config_names_the_key(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, Path("/tmp"))
    assert fragment in str(caught.value)


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[mailbot\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)
