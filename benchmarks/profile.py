"""Optional sampling profile of the daemon during a phase (``--py-spy DIR``).

Runs ``py-spy record --format raw`` (collapsed stacks, one line per stack with its
sample count) against the daemon's pid; ``summarise`` turns such a file into the share
of samples spent in each part of mailbot, which is what the report of a missed target
needs.  py-spy is a development tool, not a dependency: ``pip install py-spy``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Ordered: the first pattern found in a stack (searched from the leaf) names its component.
COMPONENTS = (
    ("sqlalchemy/orm", "ORM (session, flush, identity map)"),
    ("sqlalchemy/", "SQLAlchemy core / SQL compilation"),
    ("sqlite3", "sqlite3 driver"),
    ("psycopg", "psycopg driver"),
    ("mailparser_reply", "quote stripping (mail-parser-reply)"),
    ("mailparser", "MIME parsing (mail-parser)"),
    ("email/", "email package"),
    ("inscriptis", "HTML to text (inscriptis)"),
    ("jinja2", "templates (Jinja2)"),
    ("smtplib", "relay client (smtplib)"),
    ("aiosmtpd", "SMTP listener (aiosmtpd)"),
    ("logging/", "logging"),
    ("asyncio", "asyncio event loop"),
    ("threading.py", "thread pool / locks"),
)


def executable() -> str | None:
    """py-spy next to this Python (a virtualenv) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def record(pid: int, output: Path, rate: int = 200) -> Iterator[None]:
    """Sample ``pid`` while the block runs (no-op without py-spy)."""
    spy = executable()
    if spy is None:
        yield
        return
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
         "--output", str(output), "--nonblocking", "--threads", "--subprocesses"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarise(path: Path, top: int = 15) -> list[tuple[str, float]]:
    """(component, share of busy samples) from a py-spy raw file, largest first.

    Idle samples (threads waiting in select/epoll, queue or lock waits) are left out,
    so the shares are of the time the daemon actually spent working.
    """
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(w in leaf for w in ("select (", "poll (", "wait (", "_wait_for_tstate_lock")):
            continue
        counts[_component(frames)] += int(count)
    total = sum(counts.values()) or 1
    return [(name, n / total) for name, n in counts.most_common(top)]


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for pattern, name in COMPONENTS:
            if pattern in frame:
                return name
        if "mailbot/" in frame:
            return "mailbot: " + frame.split("mailbot/", 1)[1].split(":")[0].rstrip(")")
    return "other"
