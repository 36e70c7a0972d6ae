"""``mailbot check-config``: is this installation able to run?

One line per check, ``name: OK (detail)`` or ``name: FAILED: reason``; exit 0 only if
every check passes (69, EX_UNAVAILABLE, otherwise).  A config file that does not parse
never gets here: the CLI reports it with exit 78.
"""

from __future__ import annotations

import argparse
import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path

from jinja2 import FileSystemLoader, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import make_url, text

from mailbot.commands.common import EX_OK, EX_UNAVAILABLE
from mailbot.config import Settings
from mailbot.ops.health import maildir_problem
from mailbot.ops.service import imap_enabled
from mailbot.store.db import make_engine
from mailbot.store.schema import read_status

CHECK_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check's one-line reason."""


def check_database(settings: Settings) -> str:
    url = settings.database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    engine = make_engine(url, busy_timeout=settings.database.busy_timeout)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            found = read_status(conn)
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise CheckFailed(f"{shown}: {reason[0] if reason else type(exc).__name__}") from None
    finally:
        engine.dispose()
    problem = found.problem(empty_ok=True)  # older or newer than the code: `mailbot db upgrade`
    if problem is not None:
        raise CheckFailed(f"{shown}: {problem}")
    schema = "empty; tables are created on start" if found.state == "empty" else found.describe()
    return f"{shown}, {schema}"


def check_templates(settings: Settings) -> str:
    folder = settings.resolve_path(settings.acknowledgement.templates)
    if not (folder / "ack" / "default.txt.j2").is_file():
        raise CheckFailed(f"{folder}: ack/default.txt.j2 is missing")
    env = SandboxedEnvironment(loader=FileSystemLoader(str(folder)))
    names = [n for n in env.list_templates() if n.endswith(".j2")]
    for name in names:
        try:
            env.get_template(name)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"{name}:{line}" if line else name
            raise CheckFailed(f"{folder / where}: {exc}") from None
    return f"{folder}, {len(names)} template(s) compile"


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def check_outbound(settings: Settings) -> str:
    out = settings.outbound
    if out.transport == "maildir":
        path = settings.resolve_path(out.maildir)
        problem = maildir_problem(path)
        if problem:
            raise CheckFailed(problem)
        return f"maildir {path} writable"
    where = f"relay {out.host}:{out.port}"
    timeout = min(out.timeout, CHECK_TIMEOUT)
    steps = ["EHLO"]
    try:
        if out.tls == "implicit":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                out.host, out.port, timeout=timeout, context=_tls_context(out.verify_certificates)
            )
            steps.insert(0, "TLS")
        else:
            conn = smtplib.SMTP(out.host, out.port, timeout=timeout)
        with conn:
            conn.ehlo()
            if out.tls == "starttls":
                conn.starttls(context=_tls_context(out.verify_certificates))
                conn.ehlo()
                steps.append("STARTTLS")
            if out.username:
                if out.password() is None:
                    raise CheckFailed(
                        f"{where}: outbound.username is set but ${out.password_env} is not"
                    )
                conn.login(out.username, out.password() or "")
                steps.append("AUTH")
            code, reply = conn.noop()
            if code != 250:
                raise CheckFailed(f"{where}: NOOP answered {code} {reply.decode(errors='replace')}")
            steps.append("NOOP")
    except CheckFailed:
        raise
    except smtplib.SMTPResponseException as exc:
        message = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        raise CheckFailed(f"{where}: {exc.smtp_code} {message}") from None
    except ssl.SSLError as exc:
        raise CheckFailed(f"{where}: TLS: {exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise CheckFailed(f"{where}: {reason}") from None
    return f"{where}: {' '.join(steps)} ok"


def check_imap_section(settings: Settings) -> str:
    try:
        from mailbot.intake.imap import check_imap  # only when [intake.imap] is enabled
    except ImportError as exc:
        raise CheckFailed(f"IMAP support is not available: {exc}") from None
    try:
        return str(check_imap(settings))
    except Exception as exc:
        raise CheckFailed(str(exc) or type(exc).__name__) from None


def check_reply_tokens(settings: Settings) -> str:
    from mailbot.errors import ConfigError
    from mailbot.security_setup import secret_source

    try:
        return secret_source(settings)
    except ConfigError as exc:
        raise CheckFailed(str(exc)) from None


def run_checks(settings: Settings, config_file: str) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, Callable[[Settings], str]]] = [
        ("database", check_database),
        ("templates", check_templates),
        ("outbound", check_outbound),
        ("reply-tokens", check_reply_tokens),
    ]
    if imap_enabled(settings):
        checks.append(("imap", check_imap_section))
    results = [("config", True, str(Path(config_file).resolve()))]
    for name, check in checks:
        try:
            results.append((name, True, check(settings)))
        except CheckFailed as exc:
            results.append((name, False, str(exc)))
    return results


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.cli import config_path

    results = run_checks(settings, config_path(args))
    for name, ok, detail in results:
        print(f"{name}: OK ({detail})" if ok else f"{name}: FAILED: {detail}", flush=True)
    return EX_OK if all(ok for _, ok, _ in results) else EX_UNAVAILABLE


def register(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check-config",
        help="validate the config and connect to the database, relay and IMAP server",
        description="Validate the configuration, then connect to everything it names. "
        "Prints one line per check; exit 0 only if all pass.",
    )
    check.set_defaults(handler=cmd_check)
