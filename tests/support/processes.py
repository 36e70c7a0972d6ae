"""The processes of a daemon under test, read from /proc."""

from __future__ import annotations

import re
from pathlib import Path


def children(pid: int) -> list[int]:
    """Child processes of ``pid``: /proc/<pid>/task/*/children where the kernel has it,
    else every process whose parent is ``pid``."""
    files = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if files:
        return sorted({int(n) for f in files for n in f.read_text().split()})
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:  # the process has gone meanwhile
            continue
        match = re.search(r"^PPid:\s*(\d+)$", text, re.MULTILINE)
        if match and int(match.group(1)) == pid:
            found.append(int(status.parent.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_children(pid: int) -> list[int]:
    """Children running the worker (``python -m mailbot.worker_child FD``)."""
    return [child for child in children(pid) if "mailbot.worker_child" in cmdline(child)]
