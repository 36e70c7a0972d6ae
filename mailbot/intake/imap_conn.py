"""Connecting to the IMAP server: settings, password, TLS, timeouts, readable errors.

Plain data in (``ImapConfig``), an authenticated ``IMAPClient`` out.  Every socket gets
the configured timeout (connect and every read) plus TCP keepalive, so neither a dead
server nor a silently dropped connection can block the intake thread for long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailbot.config import ImapIntakeSection, Settings
from mailbot.errors import ConfigError, MailbotError


class ImapError(MailbotError):
    """The IMAP server cannot be used as configured; the message says why in one line."""


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    tls: str  # implicit | starttls | none
    verify_certificates: bool
    username: str
    password: str
    ca_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str = "mailbot-processed"
    quarantine_folder: str = "mailbot-quarantine"
    idle: bool = True
    idle_renew: float = 300.0
    poll_interval: float = 60.0
    timeout: float = 60.0
    batch_size: int = 100
    max_message_size: int = 26_214_400
    reconnect_max: float = 300.0

    @property
    def where(self) -> str:
        """``imap://user@host:port``, for logs and error messages (no password)."""
        return f"imap://{quote(self.username, safe='@')}@{self.host}:{self.port}"

    def __repr__(self) -> str:  # keep the password out of any log or traceback
        return f"ImapConfig({self.where}, folder={self.folder!r})"


def read_password(section: ImapIntakeSection, resolve: Callable[[str], Path]) -> str:
    """The password from ``password_file`` (first line) or else ``password_env``."""
    if section.password_file:
        path = Path(resolve(section.password_file))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(
                f"key 'intake.imap.password_file': cannot read {path}: {exc.strerror}"
            ) from None
        password = lines[0] if lines else ""
        if not password:
            raise ConfigError(f"key 'intake.imap.password_file': {path} is empty")
        return password
    password = os.environ.get(section.password_env, "")
    if not password:
        raise ConfigError(
            f"intake.imap: no IMAP password: set the environment variable "
            f"{section.password_env} (key 'intake.imap.password_env') or "
            f"'intake.imap.password_file'"
        )
    return password


def imap_config(settings: Settings) -> ImapConfig:
    """Resolve ``[intake.imap]`` into plain constructor arguments (reads the password)."""
    section = settings.intake.imap
    if not section.username:
        raise ConfigError("missing key 'intake.imap.username'")
    cfg = ImapConfig(
        host=section.host,
        port=section.effective_port,
        tls=section.tls,
        verify_certificates=section.verify_certificates,
        username=section.username,
        password=read_password(section, settings.resolve_path),
        ca_file=str(settings.resolve_path(section.ca_file)) if section.ca_file else None,
        folder=section.folder,
        processed_folder=section.processed_folder,
        quarantine_folder=section.quarantine_folder,
        idle=section.idle,
        idle_renew=section.idle_renew,
        poll_interval=section.poll_interval,
        timeout=section.timeout,
        batch_size=section.batch_size,
        max_message_size=section.max_message_size,
        reconnect_max=section.reconnect_max,
    )
    if cfg.tls != "none":
        _ssl_context(cfg)  # a bad ca_file is a config error at start, not a retry loop
    return cfg


def _ssl_context(cfg: ImapConfig) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=cfg.ca_file)
    except OSError as exc:  # FileNotFoundError, or an unreadable bundle
        raise ConfigError(
            f"key 'intake.imap.ca_file': cannot read {cfg.ca_file}: {exc.strerror or exc}"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(f"key 'intake.imap.ca_file': not a PEM CA bundle: {exc}") from None
    if not cfg.verify_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _keepalive(sock: socket.socket) -> None:
    """Probe an idle connection after 60 s, every 15 s, give up after 4 misses (Linux)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def connect(cfg: ImapConfig) -> IMAPClient:
    """Open, secure and log in; the caller owns the returned client (``logout``)."""
    context = _ssl_context(cfg)
    client = IMAPClient(
        cfg.host,
        port=cfg.port,
        ssl=cfg.tls == "implicit",
        ssl_context=context,
        timeout=cfg.timeout,
    )
    try:
        _keepalive(client.socket())
        if cfg.tls == "starttls":
            client.starttls(context)
        client.login(cfg.username, cfg.password)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def close(client: IMAPClient | None) -> None:
    """Log out politely when the connection still works; otherwise just drop it."""
    if client is None:
        return
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


def describe_error(exc: BaseException, cfg: ImapConfig | None = None) -> str:
    """One readable line for a connection, TLS, login or protocol failure."""
    timeout = f" after {cfg.timeout:g}s" if cfg is not None else ""
    if isinstance(exc, LoginError):
        return f"login refused (wrong username or password?): {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failure: server certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, is the port right?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"timed out{timeout}"
    if isinstance(exc, IMAPClientError):
        text = str(exc).strip()
        if "STARTTLS" in text and "capability" in text.lower():
            return "the server does not offer STARTTLS"
        return f"IMAP error: {text}"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    return f"{exc.__class__.__name__}: {exc}"
