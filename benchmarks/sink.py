"""An aiosmtpd server in its own process: the daemon's relay, or the no-op ceiling.

``python -m benchmarks.sink --log FILE`` accepts everything and appends one line per
message: arrival time (``time.time()``), In-Reply-To, first recipient, Message-ID, so
the benchmark can match each acknowledgement to the message it acknowledges.
``--noop`` is the ceiling: a handler that answers 250 and does nothing else.

A separate process keeps the sink off the load generator's GIL, as a real relay would be.
It prints ``ready PORT`` once listening and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import IO

from aiosmtpd.smtp import SMTP

_HEADERS = BytesHeaderParser(policy=compat32)


def _strip(value: str | None) -> str:
    return (value or "").strip().strip("<>").strip()


class NoopHandler:
    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        return "250 OK"


class RecordingHandler:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        arrived = time.time()
        raw: bytes = envelope.original_content or b""
        end = raw.find(b"\r\n\r\n")
        headers = _HEADERS.parsebytes(raw[: end + 4] if end >= 0 else raw)
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        self.out.write(
            f"{arrived:.6f}\t{_strip(headers.get('In-Reply-To'))}\t{rcpt}\t"
            f"{_strip(headers.get('Message-ID'))}\n"
        )
        self.out.flush()
        return "250 OK"


async def _serve(handler: object, port: int) -> None:
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="bench-sink.example",
            data_size_limit=256 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="bench-sink",
        )

    server = await loop.create_server(factory, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append one line per received message here")
    parser.add_argument("--noop", action="store_true", help="answer 250 and record nothing")
    args = parser.parse_args(argv)
    if args.noop:
        asyncio.run(_serve(NoopHandler(), args.port))
        return 0
    if not args.log:
        parser.error("--log is required unless --noop")
    with open(args.log, "a", encoding="utf-8") as out:
        asyncio.run(_serve(RecordingHandler(out), args.port))
    return 0


# ---------------------------------------------------------------- the parent's side


@dataclass(frozen=True)
class Arrival:
    at: float
    in_reply_to: str
    recipient: str
    message_id: str


@dataclass
class SinkProcess:
    """Starts the sink, reads what it recorded, stops it."""

    log: Path | None
    noop: bool = False
    port: int = 0
    proc: subprocess.Popen | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    _offset: int = 0

    def start(self) -> SinkProcess:
        cmd = [sys.executable, "-m", "benchmarks.sink"]
        cmd += ["--noop"] if self.noop else ["--log", str(self.log)]
        if self.log is not None:
            self.log.touch()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1]
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "" if it died on the way up
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"benchmark sink did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def poll(self) -> list[Arrival]:
        """New arrivals since the last call (complete lines only)."""
        if self.log is None:
            return []
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        fresh = []
        for line in data[:end].decode("utf-8").splitlines():
            at, irt, rcpt, mid = line.split("\t")
            fresh.append(Arrival(float(at), irt, rcpt, mid))
        self.arrivals.extend(fresh)
        return fresh

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


if __name__ == "__main__":
    sys.exit(main())
