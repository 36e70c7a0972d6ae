"""Several ``mailbot run`` daemons on one database, each with its own folder and port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from support.daemon import Daemon, base_config, merge, write_config
from support.servers import free_port


def start_daemon(
    tmp_path: Path,
    name: str,
    database_url: str,
    sink_port: int,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Daemon:
    """``mailbot run`` with its config and log in ``tmp_path/name``; waits for its port."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    config = merge(
        base_config(folder, free_port(), sink_port),
        merge(
            {
                "database": {"url": database_url},
                "acknowledgement": {"max_per_sender_per_hour": 1_000_000},
            },
            overrides or {},
        ),
    )
    path = write_config(folder, config)
    return Daemon(path, config["intake"]["smtp"]["port"], folder / "daemon.log", env).start()


def counter(engine: Engine) -> Callable[[str], int]:
    """``count("SELECT count(*) ...")`` on the shared database."""

    def count(query: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(query)).scalar_one())

    return count
