"""Ways a composed message leaves: an SMTP relay, or a maildir folder for development.

A transport raises ``TransientDelivery`` (4xx, timeouts, refused connections: try
again later) or ``PermanentDelivery`` (5xx: give up and record it).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
import time
from pathlib import Path
from typing import Protocol


class TransientDelivery(Exception):
    pass


class ChannelUnavailable(TransientDelivery):
    """The relay itself cannot be reached: no point trying its other messages now."""


class PermanentDelivery(Exception):
    pass


class Transport(Protocol):
    def send(self, envelope_from: str, recipients: list[str], payload: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message as a file into a maildir (``new/``); atomic by design."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, envelope_from: str, recipients: list[str], payload: bytes) -> None:
        try:
            mailbox.Maildir(str(self.path), create=True).add(payload)
        except OSError as exc:
            raise TransientDelivery(f"maildir {self.path}: {exc}") from exc

    def close(self) -> None:
        pass


# Seconds for which a relay connection that just answered is reused without a NOOP.
FRESH = 2.0


class SmtpTransport:
    """An SMTP relay client that keeps one connection open while there is work."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        verify_certificates: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.verify = verify_certificates
        self.username = username
        self.password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self._last_reply = 0.0  # monotonic time of the relay's last answer

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "implicit":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=self.timeout,
                context=self._tls_context(),
                local_hostname=self.local_hostname,
            )
        else:
            conn = smtplib.SMTP(
                self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
            )
        conn.ehlo()
        if self.tls == "starttls":
            conn.starttls(context=self._tls_context())
            conn.ehlo()
        if self.username:
            conn.login(self.username, self.password or "")
        return conn

    def _reusable(self) -> smtplib.SMTP | None:
        """The open connection if the relay still answers (it may have timed us out).

        A connection that answered within ``FRESH`` seconds is used without asking
        (NOOP is a round trip per message in a burst); an older one is asked first.
        """
        if self._conn is None:
            return None
        if time.monotonic() - self._last_reply < FRESH:
            return self._conn
        try:
            if self._conn.noop()[0] == 250:
                return self._conn
        except (smtplib.SMTPException, OSError):
            pass
        self.close()
        return None

    def _sendmail(self, envelope_from: str, recipients: list[str], payload: bytes) -> dict:
        """One message over the open connection, or a new one.  A connection reused
        without a NOOP that turns out closed (the relay dropped it) is replaced once."""
        reused = self._reusable()
        if reused is not None:
            try:
                return reused.sendmail(envelope_from, recipients, payload)
            except smtplib.SMTPServerDisconnected:
                self.close()
            except smtplib.SMTPSenderRefused as exc:
                if exc.smtp_code != 421:  # 421: the relay is closing this session
                    raise
                self.close()
        self._conn = self._connect()
        return self._conn.sendmail(envelope_from, recipients, payload)

    def send(self, envelope_from: str, recipients: list[str], payload: bytes) -> None:
        try:
            refused = self._sendmail(envelope_from, recipients, payload)
            self._last_reply = time.monotonic()
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            error = f"recipients refused: {exc.recipients}"
            if all(500 <= c < 600 for c in codes):
                raise PermanentDelivery(error) from exc
            raise TransientDelivery(error) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            error = f"{exc.smtp_code} {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentDelivery(error) from exc
            raise TransientDelivery(error) from exc
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            self.close()
            raise TransientDelivery(f"{exc.__class__.__name__}: {exc}") from exc
        if refused:
            raise TransientDelivery(f"some recipients refused: {refused}")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None
