"""Backlog import: ``mailbot import`` of a generated mbox (no acknowledgements)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.checks import verify
from benchmarks.daemon import REPO, bench_config, mailbot_command, sqlite_url, write_config
from benchmarks.rig import loadavg
from benchmarks.store import Snapshot, StoreReader
from benchmarks.workload import Workload

UNUSED_RELAY_PORT = 9  # import sends nothing; the config only needs a relay to be valid


def write_mbox(path: Path, workload: Workload) -> int:
    """An mbox (LF line ends, ``>From`` quoting) in workload order; returns its size."""
    with path.open("wb") as out:
        for mail in workload:
            body = mail.raw.replace(b"\r\n", b"\n")
            body = b"\n".join(
                b">" + line if line.startswith(b"From ") else line for line in body.split(b"\n")
            )
            out.write(b"From MAILER-DAEMON Mon Mar  3 09:00:00 2025\n" + body)
            out.write(b"\n" if body.endswith(b"\n") else b"\n\n")
    return path.stat().st_size


def import_available(config_path: Path) -> str | None:
    """None when ``mailbot import`` exists, else why not."""
    result = subprocess.run(
        mailbot_command(config_path, "import", "--help"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    if result.returncode == 0:
        return None
    return "not available: `mailbot import` " + (
        result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
    )


def import_run(folder: Path, workload: Workload) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    db_url = sqlite_url(folder)
    config_path = write_config(folder, bench_config(folder, db_url, UNUSED_RELAY_PORT))
    why_not = import_available(config_path)
    if why_not is not None:
        return {"status": "not available", "reason": why_not}
    mbox = folder / "backlog.mbox"
    size = write_mbox(mbox, workload)
    load = loadavg()
    started = time.monotonic()
    result = subprocess.run(
        mailbot_command(config_path, "import", "--no-progress", str(mbox)),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3600,
    )
    seconds = time.monotonic() - started
    figures: dict[str, Any] = {
        "messages": len(workload),
        "mbox_bytes": size,
        "seconds": round(seconds, 2),
        "msgs_per_s": round(len(workload) / seconds, 1),
        "exit_code": result.returncode,
        "summary": result.stdout.strip().splitlines()[-1:] or result.stderr.strip()[-500:],
        "load_before": load,
        "load_after": loadavg(),
    }
    if result.returncode != 0:
        return {
            **figures,
            "correct": False,
            "problems": [f"exit {result.returncode}: {result.stderr.strip()[-500:]}"],
        }
    reader = StoreReader(db_url)
    try:
        verdict = verify(reader, Snapshot(0, 0, 0), workload, acks=None)
        outbox = reader.outbox_rows()
    finally:
        reader.dispose()
    if outbox:
        verdict["problems"].append(f"{outbox} outbox row(s) although acknowledgements are off")
        verdict["correct"] = False
    return {**figures, **verdict}
