"""A small run of ``python -m benchmarks.intake``: it completes and every run is correct.

No timing thresholds here (machines are noisy): the benchmark prints met / not met,
this test only checks that each phase ran and was correct.  Phases that need Dovecot or
PostgreSQL may say "not available" unless MAILBOT_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "--messages", "150",
    "--latency-rate", "50", "--latency-seconds", "2",
    "--import-messages", "150",
    "--imap-messages", "40", "--imap-idle-messages", "5",
    "--big-message-mb", "2", "--big-attachment-mb", "1",
]  # fmt: skip


def test_small_benchmark_run_is_correct(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.intake", *SMALL, "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["correct"] is True
    assert "targets:" in result.stdout and "result: all runs correct" in result.stdout

    for conns in ("1", "8"):
        assert results["ceiling"][conns]["accepted"] == 150
        burst = results["sqlite"]["smtp"][conns]
        assert burst["correct"] and burst["accepted"] == 150
        assert burst["acks"] == burst["expected_acks"] > 0
    assert results["sqlite"]["latency"]["receipt_to_ack"]["samples"] > 0
    # The warm-up message before the phases was acknowledged, and no phase counted it.
    assert results["sqlite"]["first_ack_ms"] > 0
    assert "daemon start -> first ack" in result.stdout
    memory = results["sqlite"]["memory"]
    assert memory["correct"] and memory["messages_end"] == 450
    assert results["big_message"]["correct"]
    assert results["import"]["correct"] and results["import"]["thread_entries"] == 150

    required = os.environ.get("MAILBOT_REQUIRE_INTEGRATION") == "1"
    optional = {"imap": results["imap"], "postgres": results["postgres"]}
    for name, phase in optional.items():
        if phase.get("status") == "not available" and not required:
            continue
        assert phase.get("status") != "not available", f"{name}: {phase.get('reason')}"
        assert phase.get("correct") is not False, f"{name}: {phase}"
    if results["postgres"].get("status") != "not available":
        assert results["postgres"]["smtp"]["8"]["correct"]
    statuses = {t["status"] for t in results["targets"]}
    assert statuses <= {"met", "NOT MET", "not measured"}
