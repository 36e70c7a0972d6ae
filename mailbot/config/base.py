"""What every config section shares: strict, frozen pydantic models and address checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config table: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def lower_address(value: str) -> str:
    value = value.strip().lower()
    if "@" not in value or value.startswith("@") or value.endswith("@"):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def domain_name(value: str) -> str:
    value = value.strip().lower().lstrip("@")
    if not value or "@" in value or " " in value:
        raise ValueError(f"not a domain: {value!r}")
    return value
