"""``python -m benchmarks.intake``: throughput, latency and memory of mailbot's intake path.

Everything runs on loopback in one command: the ceiling (the same client against a
no-op aiosmtpd listener, over one connection again at the end: the targets compare
with the higher of the two), bursts over 1 and 8 SMTP connections into ``mailbot run``
with acknowledgements relayed to a sink, a steady-load latency run, memory after all
of them, one large message, ``mailbot import`` of an mbox, IMAP (Dovecot) draining and
IDLE, and the SMTP runs again on PostgreSQL when MAILBOT_TEST_POSTGRES_URL is set.
Prints a table and the targets (met / not met); ``--json FILE`` writes the same figures.

Exit status: 0 when every run was correct, 1 when one was not (or failed), 2 with
``--strict`` when all were correct but a target was missed.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import imap_phase, postgres, profile, report
from benchmarks.daemon import ACK_LIMIT, REPO, sqlite_url
from benchmarks.import_phase import import_run
from benchmarks.rig import Rig, cpu_pressure, loadavg
from benchmarks.smtp_phases import big_message_run, ceiling, smtp_run
from benchmarks.workload import Generator, Workload

PHASES = ("ceiling", "smtp", "latency", "memory", "big", "import", "imap", "postgres")
LATENCY_CONNECTIONS = 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.intake",
        description="Benchmark mailbot's intake path (see README, section Benchmarks).",
    )
    p.add_argument("--messages", type=int, default=5000, help="messages per burst (5000)")
    p.add_argument("--connections", default="1,8", help="burst connection counts (1,8)")
    p.add_argument("--latency-rate", type=float, default=100.0, help="msgs/s offered (100)")
    p.add_argument("--latency-seconds", type=float, default=30.0, help="duration (30)")
    p.add_argument(
        "--memory-total",
        type=int,
        default=None,
        help="messages the SQLite daemon has taken when memory is read the second time "
        "(default 3 x --messages: 15,000)",
    )
    p.add_argument("--import-messages", type=int, default=10_000, help="mbox size (10000)")
    p.add_argument("--imap-messages", type=int, default=2000, help="folder to drain (2000)")
    p.add_argument("--imap-idle-messages", type=int, default=100, help="APPENDs timed (100)")
    p.add_argument("--big-message-mb", type=float, default=25.0, help="large message (25)")
    p.add_argument("--big-attachment-mb", type=float, default=20.0, help="its attachment (20)")
    p.add_argument("--senders", type=int, default=100, help="distinct senders (100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--worker-processes",
        type=int,
        default=None,
        help="[worker] processes of the daemons under test (default: the daemon's own, 1)",
    )
    p.add_argument("--only", help=f"comma-separated subset of: {','.join(PHASES)}")
    p.add_argument("--skip", help="comma-separated phases to leave out")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get(postgres.ENV),
        help=f"PostgreSQL server for the postgres phase (default ${postgres.ENV})",
    )
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON here")
    p.add_argument("--py-spy", metavar="DIR", help="record py-spy profiles of the bursts here")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, databases)")
    p.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = p.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else set(PHASES)
    chosen -= set(args.skip.split(",")) if args.skip else set()
    unknown = chosen - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}")
    args.phases = chosen
    try:
        args.connection_counts = [int(c) for c in args.connections.split(",")]
    except ValueError:
        p.error(f"--connections: not a list of numbers: {args.connections!r}")
    if args.messages < 1 or any(c < 1 for c in args.connection_counts):
        p.error("--messages and --connections must be positive")
    if args.memory_total is None:
        args.memory_total = 3 * args.messages
    return args


def guarded(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a phase; an exception becomes a failed phase with the error, not a crash."""
    print(f"... {name}", file=sys.stderr, flush=True)
    try:
        return run()
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        print(f"... {name} failed: {detail}", file=sys.stderr, flush=True)
        return {"status": "error", "error": detail, "correct": False}


def _byte_compiled() -> str:
    """Compile the package's bytecode first, as ``pip install`` does.

    Otherwise, where ``PYTHONDONTWRITEBYTECODE`` is set (as on these machines) or the
    tree is read-only, every process the benchmark starts compiles mailbot from source
    at its start: a quarter of a second of the import's ten.
    """
    ok = compileall.compile_dir(REPO / "mailbot", quiet=1)
    return "compiled" if ok else "not compiled (see compileall's errors)"


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.gen = Generator(args.seed, args.senders)
        self.bursts = {c: self.gen.build(f"s{c}", args.messages) for c in args.connection_counts}

    def profiled(self, rig: Rig, name: str) -> AbstractContextManager[None]:
        if not self.args.py_spy:
            return contextlib.nullcontext()
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        return profile.record(rig.daemon.pid, out / f"{name}.txt")

    @property
    def overrides(self) -> dict[str, Any]:
        """Settings of every daemon under test (from the command line)."""
        if self.args.worker_processes is None:
            return {}
        return {"worker": {"processes": self.args.worker_processes}}

    def latency_workload(self, name: str) -> Workload:
        count = max(1, int(self.args.latency_rate * self.args.latency_seconds))
        return self.gen.build(name, count)

    def daemon_runs(self, db: str, db_url: str, memory: bool) -> dict[str, Any]:
        """Bursts, latency (and memory) against one daemon on one database."""
        args = self.args
        out: dict[str, Any] = {}
        rig = Rig.start(self.root / db, db_url, self.overrides)
        out["first_ack_ms"] = rig.first_ack_ms
        try:
            taken = 0
            mem: dict[str, Any] = {"peak_rss_start_mb": rig.daemon.memory()["peak_rss_mb"]}
            correct = True
            if "smtp" in args.phases:
                out["smtp"] = {}
                for conns, workload in self.bursts.items():
                    if db != "sqlite":
                        workload = self.gen.build(f"{db}-s{conns}", args.messages)
                    with self.profiled(rig, f"{db}-burst-{conns}"):
                        run = guarded(
                            f"{db} burst, {conns} conn.",
                            lambda w=workload, c=conns: smtp_run(rig, w, c),
                        )
                    out["smtp"][str(conns)] = run
                    taken += len(workload)
                    correct = correct and run.get("correct", False)
                    if "peak_rss_first_mb" not in mem:
                        mem |= {
                            "peak_rss_first_mb": rig.daemon.memory()["peak_rss_mb"],
                            "messages_first": taken,
                        }
            if "latency" in args.phases:
                workload = self.latency_workload(f"{db}-lat")
                with self.profiled(rig, f"{db}-latency"):
                    run = guarded(f"{db} latency", lambda: smtp_run(
                        rig, workload, LATENCY_CONNECTIONS, rate=args.latency_rate))  # fmt: skip
                run["achieved_rate"] = run.get("accepted_per_s")
                out["latency"] = run
                taken += len(workload)
                correct = correct and run.get("correct", False)
            if memory and "memory" in args.phases:
                rest = args.memory_total - taken
                if rest > 0:
                    top_up = self.gen.build("memory", rest)
                    run = guarded("memory top-up", lambda: smtp_run(rig, top_up, 8))
                    taken += len(top_up)
                    correct = correct and run.get("correct", False)
                    mem["top_up"] = {k: run.get(k) for k in ("messages", "correct", "problems")}
                end = rig.daemon.memory()
                mem |= {"peak_rss_end_mb": end["peak_rss_mb"], "rss_end_mb": end["rss_mb"]}
                mem["messages_end"] = taken
                if "peak_rss_first_mb" in mem:
                    mem["growth_mb"] = round(mem["peak_rss_end_mb"] - mem["peak_rss_first_mb"], 1)
                mem["correct"] = correct
                out["memory"] = mem
        finally:
            rig.stop()
        return out

    def run(self) -> dict[str, Any]:
        args = self.args
        results: dict[str, Any] = {
            "meta": {
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "revision": _git_revision(),
                "bytecode": _byte_compiled(),
                "load_start": loadavg(),
                "cpu_pressure_start": cpu_pressure(),
                "ack_note": f"the daemon runs with acknowledgement.max_per_sender_per_hour = "
                f"{ACK_LIMIT:,} so that every new ticket from a person is acknowledged",
                "arguments": {k: v for k, v in vars(args).items() if k != "phases"}
                | {"phases": sorted(args.phases)},
            },
            "workload": next(iter(self.bursts.values())).summary(),
        }
        if "ceiling" in args.phases:
            results["ceiling"] = {
                str(c): guarded(f"ceiling, {c} conn.", lambda w=w, c=c: ceiling(w, c))
                for c, w in self.bursts.items()
            }
        if args.phases & {"smtp", "latency", "memory"}:
            results["sqlite"] = guarded(
                "SQLite daemon",
                lambda: self.daemon_runs("sqlite", sqlite_url(self.root / "sqlite"), True),
            )
        if "big" in args.phases:
            size = int(args.big_message_mb * 1e6)
            attachment = int(args.big_attachment_mb * 1e6)
            results["big_message"] = guarded(
                "large message",
                lambda: big_message_run(
                    self.root / "big",
                    sqlite_url(self.root / "big"),
                    size,
                    attachment,
                    self.overrides,
                ),
            )
        if "import" in args.phases:
            backlog = self.gen.build("import", args.import_messages)
            results["import"] = guarded("import", lambda: import_run(self.root / "import", backlog))
        if "imap" in args.phases:
            drain = self.gen.build("imap", args.imap_messages)
            idle = self.gen.build(
                "idle", args.imap_idle_messages, reply_share=0.0, automatic_share=0.0
            )
            results["imap"] = guarded(
                "IMAP", lambda: imap_phase.imap_run(self.root / "imap", drain, idle)
            )
        if "postgres" in args.phases:
            results["postgres"] = guarded("PostgreSQL", self.postgres_runs)
        one = self.bursts.get(1)
        if "ceiling" in args.phases and args.phases - {"ceiling"} and one is not None:
            # Again at the end: the targets compare with the higher (report.ceiling_of).
            again = guarded("ceiling again, 1 conn.", lambda: ceiling(one, 1))
            results["ceiling_again"] = {"1": again}
        results["meta"]["load_end"] = loadavg()
        results["meta"]["cpu_pressure_end"] = cpu_pressure()
        results["targets"] = report.evaluate(results)
        results["correct"] = all_correct(results)
        return results

    def postgres_runs(self) -> dict[str, Any]:
        url = self.args.postgres_url
        if not url:
            return {"status": "not available", "reason": f"not run: {postgres.ENV} is not set"}
        if not self.args.phases & {"smtp", "latency"}:
            return {"status": "not available", "reason": "not run: smtp and latency skipped"}
        with postgres.temporary_database(url) as db_url:
            return self.daemon_runs("postgres", db_url, memory=False)


def all_correct(results: dict[str, Any]) -> bool:
    """False if any phase that ran was incorrect or failed ("not available" is fine)."""

    def walk(node: Any) -> bool:
        if not isinstance(node, dict):
            return True
        if node.get("status") == "not available":
            return True
        if node.get("status") == "error" or node.get("correct") is False:
            return False
        return all(walk(v) for k, v in node.items() if k not in ("meta", "targets"))

    return walk({k: v for k, v in results.items() if k not in ("meta", "targets", "correct")})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    root.chmod(0o755)
    try:
        results = Bench(args, root).run()
    finally:
        if args.keep:
            print(f"kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(report.render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if not results["correct"]:
        return 1
    if args.strict and any(t["status"] != "met" for t in results["targets"]):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
