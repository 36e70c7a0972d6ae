"""Reply tokens: proof that a reply's author received mail about the ticket.

Every message mailbot sends about a ticket (acknowledgements, relays, pages, reminders)
carries ``.r<number>-<tag>`` at the end of the local part of its Message-ID, where
``tag`` is an HMAC of the ticket number under a secret only mailbot knows.  A mail
client copies that Message-ID into In-Reply-To/References, so a reply that names a
valid token for ticket N comes from someone who saw our mail about N, even from an
address we have never seen (a colleague it was forwarded to).  A forger who only
knows the ticket number cannot produce one.

The secret comes from the environment variable named by
``[security] reply_token_secret_env``, else from ``reply_token_secret_file``, else it is
generated on first start and kept in the database (so every daemon on the same store
signs and checks with the same key).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from mailbot.errors import ConfigError

TAG_LENGTH = 20  # hex digits: 80 bits of the HMAC, far beyond guessing by mail
MIN_SECRET_LENGTH = 16
SECRET_NAME = "reply_token"

_TOKEN = re.compile(rf"(?:^|[.])r(\d{{1,12}})-([0-9a-f]{{{TAG_LENGTH}}})$")


@dataclass(frozen=True)
class ReplyTokens:
    """Signs and checks reply tokens; pure (a secret in, strings out)."""

    secret: bytes

    def tag(self, number: int) -> str:
        digest = hmac.new(self.secret, f"mailbot-ticket:{number}".encode(), hashlib.sha256)
        return digest.hexdigest()[:TAG_LENGTH]

    def token(self, number: int) -> str:
        """The piece appended to a Message-ID's local part: ``r1001-<tag>``."""
        return f"r{number}-{self.tag(number)}"

    def ticket_number(self, message_id: str) -> int | None:
        """The ticket a Message-ID carries a valid token for, or None."""
        local = message_id.strip().strip("<>").rsplit("@", 1)[0]
        found = _TOKEN.search(local.lower())
        if found is None:
            return None
        number = int(found.group(1))
        if not hmac.compare_digest(found.group(2), self.tag(number)):
            return None
        return number

    def proves(self, message_ids: tuple[str, ...] | list[str], number: int) -> bool:
        """True when any of the ids carries a valid token for ticket ``number``."""
        return any(self.ticket_number(mid) == number for mid in message_ids)


def with_token(message_id: str, token: str) -> str:
    """``local@domain`` → ``local.token@domain`` (no token: unchanged)."""
    if not token:
        return message_id
    local, _, domain = message_id.rpartition("@")
    return f"{local}.{token}@{domain}"


def no_token(number: int) -> str:
    """The token function when tokens are off (tests that build composers by hand)."""
    return ""


# ---------------------------------------------------------------- where the secret comes from


def _checked(value: bytes, where: str) -> bytes:
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: the reply-token secret must be at least {MIN_SECRET_LENGTH} characters"
        )
    return value


def configured_secret(env_name: str, file_path: str | None) -> bytes | None:
    """The secret from the environment or the file, or None when neither is configured.

    A configured file that cannot be read, or a secret that is too short, is a
    configuration error naming the key, raised at start-up.
    """
    from_env = os.environ.get(env_name, "") if env_name else ""
    if from_env:
        return _checked(
            from_env.encode(), f"environment variable {env_name} (security.reply_token_secret_env)"
        )
    if file_path:
        try:
            data = Path(file_path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"key 'security.reply_token_secret_file': cannot read {file_path}: {exc.strerror}"
            ) from None
        return _checked(data, "key 'security.reply_token_secret_file'")
    return None


def stored_secret(session: Session) -> bytes:
    """The database's secret, generated and stored by whichever daemon starts first."""
    from mailbot.store.apply_service import insert_new
    from mailbot.store.models import StoredSecret

    insert_new(session, StoredSecret, {"name": SECRET_NAME, "value": secrets.token_hex(32)})
    row = session.get(StoredSecret, SECRET_NAME)
    assert row is not None
    return row.value.encode()
