"""Targets (met / not met) and the table for people; the JSON is the same ``results`` dict.

A target whose phase was not correct is FAILED whatever its figure: a fast wrong run
does not count.  A phase that could not run is "not measured", with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CEILING_SHARE = 0.25
CEILING_GOAL = 0.50
P99_ACK_MS = 250.0
IMPORT_RATE = 1000.0
IMAP_P99_MS = 1000.0
MEMORY_MB = 150.0
MEMORY_GROWTH_MB = 20.0
BIG_MESSAGE_MB = 400.0


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def ceiling_of(results: dict[str, Any]) -> float | None:
    """The one-connection ceiling the SMTP targets compare with: the higher of its two
    measurements, at the start of the run and at its end.  On a shared machine the
    ceiling (two processes answering each other in lockstep) moves with the host more
    than the daemon does; the higher one is the stricter comparison."""
    measured = [_get(results, key, "1", "msgs_per_s") for key in ("ceiling", "ceiling_again")]
    rates = [rate for rate in measured if rate]
    return max(rates) if rates else None


def _why_missing(results: dict[str, Any], *path: str) -> str:
    """The reason recorded on the nearest enclosing phase, or 'not run'."""
    for depth in range(len(path), 0, -1):
        node = _get(results, *path[:depth])
        if isinstance(node, dict) and ("reason" in node or "error" in node):
            return str(node.get("reason") or node.get("error"))
    return "not run"


def _target(name: str, phase: Any, value: Any, met: Callable[[Any], bool], shown: str) -> dict:
    if not isinstance(phase, dict) or value is None:
        return {"target": name, "status": "not measured", "value": None, "detail": shown}
    if not phase.get("correct", False):
        return {"target": name, "status": "FAILED (incorrect run)", "value": value, "detail": shown}
    return {
        "target": name,
        "status": "met" if met(value) else "NOT MET",
        "value": value,
        "detail": shown,
    }


def _smtp_targets(results: dict[str, Any], db: str, label: str) -> list[dict]:
    out = []
    ceiling = ceiling_of(results)
    for conns in ("1", "8"):
        run = _get(results, db, "smtp", conns)
        rate = _get(run or {}, "processed_per_s")
        ratio = rate / ceiling if rate is not None and ceiling else None
        detail = (
            f"{ratio:.0%} ({rate} of {ceiling} msgs/s; goal {CEILING_GOAL:.0%})"
            if ratio is not None
            else _why_missing(results, db, "smtp", conns)
        )
        out.append(
            _target(
                f"{label}SMTP intake with acks, {conns} conn. >= {CEILING_SHARE:.0%} of ceiling",
                run,
                None if ratio is None else round(ratio, 3),
                lambda r: r >= CEILING_SHARE,
                detail,
            )
        )
        growing = _get(run or {}, "ack_backlog", "growing")
        backlog = _get(run or {}, "ack_backlog") or {}
        out.append(
            _target(
                f"{label}ack backlog not growing, {conns} conn.",
                run,
                growing,
                lambda g: not g,
                f"owed acks: first quarter {backlog.get('first_quarter_mean')}, "
                f"last quarter {backlog.get('last_quarter_mean')}, peak {backlog.get('peak')}"
                if backlog
                else _why_missing(results, db, "smtp", conns),
            )
        )
    latency = _get(results, db, "latency")
    p99 = _get(latency or {}, "receipt_to_ack", "p99_ms")
    out.append(
        _target(
            f"{label}p99 receipt -> ack at steady load < {P99_ACK_MS:.0f} ms",
            latency,
            p99,
            lambda v: v < P99_ACK_MS,
            f"{p99} ms at {_get(latency or {}, 'achieved_rate')} msgs/s"
            if p99 is not None
            else _why_missing(results, db, "latency"),
        )
    )
    return out


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets = _smtp_targets(results, "sqlite", "")
    imp = results.get("import")
    rate = _get(imp or {}, "msgs_per_s")
    targets.append(
        _target(
            f"import >= {IMPORT_RATE:.0f} msgs/s",
            imp,
            rate,
            lambda v: v >= IMPORT_RATE,
            f"{rate} msgs/s" if rate is not None else _why_missing(results, "import"),
        )
    )
    idle = _get(results, "imap", "idle")
    p99 = _get(idle or {}, "append_to_ack", "p99_ms")
    targets.append(
        _target(
            f"IMAP IDLE p99 APPEND -> ack < {IMAP_P99_MS:.0f} ms",
            idle,
            p99,
            lambda v: v < IMAP_P99_MS,
            f"{p99} ms" if p99 is not None else _why_missing(results, "imap"),
        )
    )
    memory = _get(results, "sqlite", "memory")
    peak = _get(memory or {}, "peak_rss_end_mb")
    growth = _get(memory or {}, "growth_mb")
    total = _get(memory or {}, "messages_end")
    targets.append(
        _target(
            f"peak RSS after all SMTP messages < {MEMORY_MB:.0f} MB",
            memory,
            peak,
            lambda v: v < MEMORY_MB,
            f"{peak} MB after {total} messages"
            if peak is not None
            else _why_missing(results, "sqlite", "memory"),
        )
    )
    targets.append(
        _target(
            f"peak RSS growth over the later messages < {MEMORY_GROWTH_MB:.0f} MB",
            memory,
            growth,
            lambda v: v < MEMORY_GROWTH_MB,
            f"{growth} MB ({_get(memory or {}, 'peak_rss_first_mb')} MB after "
            f"{_get(memory or {}, 'messages_first')} -> {peak} MB after {total})"
            if growth is not None
            else _why_missing(results, "sqlite", "memory"),
        )
    )
    big = results.get("big_message")
    peak_big = _get(big or {}, "peak_rss_mb")
    targets.append(
        _target(
            f"large message handled under {BIG_MESSAGE_MB:.0f} MB peak RSS",
            big,
            peak_big,
            lambda v: v < BIG_MESSAGE_MB,
            f"{peak_big} MB for a {_get(big or {}, 'message_bytes')}-byte message"
            if peak_big is not None
            else _why_missing(results, "big_message"),
        )
    )
    if results.get("postgres") is not None:
        targets += _smtp_targets(results, "postgres", "PostgreSQL: ")
    return targets


# ---------------------------------------------------------------- the table for people


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}"
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return f"{value}{suffix}"


def _load(phase: dict[str, Any]) -> str:
    load = phase.get("load_before")
    return f"{load[0]:.2f}" if load else "-"


def _correct(phase: dict[str, Any]) -> str:
    if phase.get("correct"):
        return "yes"
    problems = phase.get("problems") or []
    return "NO: " + "; ".join(problems[:2]) if problems else "NO"


def _smtp_rows(results: dict[str, Any], db: str, label: str) -> list[list[str]]:
    rows = []
    ceiling = ceiling_of(results)
    for conns, run in sorted((_get(results, db, "smtp") or {}).items()):
        if "error" in run or "reason" in run:
            rows.append([f"{label} burst", conns, "-", "-", "-", "-", "-", "-", "-", "error"])
            continue
        ratio = run["processed_per_s"] / ceiling if ceiling else None
        backlog = "growing" if run["ack_backlog"]["growing"] else "level"
        rows.append(
            [
                f"{label} burst",
                conns,
                _fmt(run["messages"]),
                _fmt(run["accepted_per_s"]),
                _fmt(run["processed_per_s"]),
                _fmt(run["acks_per_s"]),
                f"{ratio:.0%}" if ratio is not None else "-",
                f"{backlog} (peak {run['ack_backlog']['peak']})",
                _load(run),
                _correct(run),
            ]
        )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return out


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"mailbot intake benchmark  {meta['started']}  ({meta['cpus']} CPUs, "
        f"load at start {' '.join(f'{v:.2f}' for v in meta['load_start'])}, "
        f"at end {' '.join(f'{v:.2f}' for v in meta.get('load_end', []))}; "
        f"CPU pressure (PSI some avg10) {meta.get('cpu_pressure_start')}% at start, "
        f"{meta.get('cpu_pressure_end')}% at end; rev {meta['revision']}; "
        f"bytecode {meta.get('bytecode', 'unknown')})",
        f"workload per burst: {_workload_line(results.get('workload') or {})}",
        f"note: {meta['ack_note']}",
        "",
    ]
    header = [
        "phase", "conns", "msgs", "accepted/s", "processed/s", "acks/s", "vs ceiling",
        "ack backlog", "load", "correct",
    ]  # fmt: skip
    rows = []
    top = ceiling_of(results)
    measured = [
        ("ceiling: no-op aiosmtpd", "ceiling"),
        ("ceiling again, at the end", "ceiling_again"),
    ]
    for label, key in measured:
        for conns, run in sorted((results.get(key) or {}).items()):
            if "msgs_per_s" not in run:  # the phase failed: its error is in the JSON
                rows.append([label, conns, "-", "-", "-", "-", "-", "-", "-", "error"])
                continue
            chosen = conns == "1" and run["msgs_per_s"] == top
            rows.append(
                [
                    label,
                    conns,
                    _fmt(run["messages"]),
                    _fmt(run["msgs_per_s"]),
                    "-",
                    "-",
                    "100%" if chosen else "-",
                    "-",
                    _load(run),
                    _correct(run),
                ]
            )
    rows += _smtp_rows(results, "sqlite", "SQLite")
    rows += _smtp_rows(results, "postgres", "PostgreSQL")
    lines += _table(header, rows)
    lines.append("")
    for db, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        first_ack = _get(results, db, "first_ack_ms")
        if first_ack is not None:
            lines.append(
                f"{label} daemon start -> first ack (a warm-up message before the phases): "
                f"{_fmt(first_ack)} ms"
            )
        lines += _latency_lines(_get(results, db, "latency"), label)
    lines += _memory_lines(results)
    lines += _other_lines(results)
    lines += ["", "targets:"]
    for target in results.get("targets", []):
        lines.append(f"  [{target['status']}] {target['target']}: {target['detail']}")
    lines.append("")
    lines.append("result: " + ("all runs correct" if results.get("correct") else "INCORRECT RUN"))
    return "\n".join(lines)


def _workload_line(w: dict[str, Any]) -> str:
    if not w:
        return "-"
    return (
        f"{w['messages']} messages, {w['originals']} originals / {w['replies']} replies, "
        f"{w['automatic']} automatic, {w['with_attachment']} with attachment, "
        f"{w['senders']} senders, mean {w['mean_size_bytes'] / 1024:.1f} KB "
        f"(max {w['max_size_bytes'] / 1024:.1f} KB), {w['expected_acks']} acks expected"
    )


def _latency_lines(run: dict[str, Any] | None, label: str) -> list[str]:
    if run is None:
        return []
    if "error" in run or "reason" in run:
        return [f"{label} latency: {run.get('error') or run.get('reason')}"]
    ack, smtp = run["receipt_to_ack"], run["smtp_transaction"]
    return [
        f"{label} latency at {run['offered_rate']:g} msgs/s offered ({run['achieved_rate']} "
        f"achieved, {run['messages']} msgs, {run['connections']} conns, load {_load(run)}): "
        f"250 -> ack p50 {_fmt(ack['p50_ms'])} / p95 {_fmt(ack['p95_ms'])} / "
        f"p99 {_fmt(ack['p99_ms'])} / max {_fmt(ack['max_ms'])} ms; "
        f"SMTP transaction p50 {_fmt(smtp['p50_ms'])} / p99 {_fmt(smtp['p99_ms'])} ms; "
        f"correct: {_correct(run)}",
        f"  split: {_split(run)}",
    ]


def _split(run: dict[str, Any]) -> str:
    """p50/p99 of each leg of hand-over → ack (see checks.latency_split)."""
    parts = []
    for key, label in (
        ("handover_to_stored", "hand-over -> stored"),
        ("stored_to_processed", "stored -> processed"),
        ("processed_to_ack", "processed -> ack"),
    ):
        leg = run.get(key) or {}
        parts.append(f"{label} p50 {_fmt(leg.get('p50_ms'))} / p99 {_fmt(leg.get('p99_ms'))} ms")
    return "; ".join(parts)


def _memory_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    memory = _get(results, "sqlite", "memory")
    if memory and "peak_rss_end_mb" in memory:
        lines.append(
            f"memory (SQLite daemon, VmHWM): {memory['peak_rss_start_mb']} MB at start, "
            f"{memory.get('peak_rss_first_mb', '-')} MB after "
            f"{memory.get('messages_first', '-')} messages, "
            f"{memory['peak_rss_end_mb']} MB after {memory['messages_end']} "
            f"(growth {memory.get('growth_mb', '-')} MB); correct: {_correct(memory)}"
        )
    big = results.get("big_message")
    if big and "peak_rss_mb" in big:
        lines.append(
            f"large message: {big['message_bytes'] / 1e6:.1f} MB with a "
            f"{big['attachment_bytes'] / 1e6:.1f} MB attachment: peak RSS "
            f"{big['peak_rss_before_mb']} -> {big['peak_rss_mb']} MB (highest VmRSS seen while "
            f"receiving {big.get('rss_max_receiving_mb')} MB, while processing "
            f"{big.get('rss_max_processing_mb')} MB), {big['seconds']} s to ack; "
            f"correct: {_correct(big)}"
        )
    elif big:
        lines.append(f"large message: {big.get('error') or big.get('reason')}")
    return lines


def _other_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    imp = results.get("import")
    if imp and "msgs_per_s" in imp:
        lines.append(
            f"import: {imp['messages']:,} messages ({imp['mbox_bytes'] / 1e6:.0f} MB mbox) in "
            f"{imp['seconds']} s = {imp['msgs_per_s']} msgs/s (load {_load(imp)}); "
            f"correct: {_correct(imp)}"
        )
    elif imp:
        lines.append(f"import: {imp.get('reason') or imp.get('error')}")
    imap = results.get("imap")
    if imap and "drain" in imap:
        drain, idle = imap["drain"], imap["idle"]
        lat = idle["append_to_ack"]
        lines.append(
            f"IMAP drain: {drain['messages']:,} messages stored in {drain['stored_seconds']} s "
            f"({drain['stored_per_s']} msgs/s), processed and acked in {drain['total_seconds']} s "
            f"({drain['processed_per_s']} msgs/s); correct: {_correct(drain)}"
        )
        lines.append(
            f"IMAP IDLE: {idle['messages']} APPENDs: APPEND -> ack p50 {_fmt(lat['p50_ms'])} / "
            f"p95 {_fmt(lat['p95_ms'])} / p99 {_fmt(lat['p99_ms'])} ms; correct: {_correct(idle)}"
        )
        lines.append(f"  split: {_split(idle)}")
    elif imap:
        lines.append(f"IMAP: {imap.get('reason') or imap.get('error')}")
    pg = results.get("postgres")
    if pg and ("error" in pg or "reason" in pg):
        lines.append(f"PostgreSQL: {pg.get('reason') or pg.get('error')}")
    return lines
