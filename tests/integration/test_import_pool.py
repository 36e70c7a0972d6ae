"""The import's prepare pool: pieces come back in mailbox order, whoever prepared them.

Real pool processes (fork).  The pool is made slow on purpose, so the importing process
prepares pieces itself (``_PiecesInOrder``); the order must not change for it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import pytest
from support.mail import make_mail

from mailbot.commands import prepare_pool
from mailbot.commands.prepare_pool import Prepared, PreparePool
from mailbot.pipeline.limits import Limits
from mailbot.store.threads import ThreadSettings
from mailbot.worker import Rejected

pytestmark = pytest.mark.integration

_IMPORTING_PROCESS = os.getpid()
_PREPARED_HERE: list[bytes] = []  # appended to in the importing process only
_REAL_PREPARE = prepare_pool.prepare_raw


def _slow_in_the_pool(raw: bytes, limits: Limits, thread: ThreadSettings) -> Prepared:
    if os.getpid() == _IMPORTING_PROCESS:
        _PREPARED_HERE.append(raw)
    else:
        time.sleep(0.01)
    return _REAL_PREPARE(raw, limits, thread)


def test_pieces_prepared_here_and_in_the_pool_come_back_in_mailbox_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(prepare_pool, "prepare_raw", _slow_in_the_pool)
    monkeypatch.setattr(prepare_pool, "PIECE", 5)
    monkeypatch.setattr(prepare_pool, "PIECES_AHEAD", 3)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the handover folder goes
    _PREPARED_HERE.clear()
    raws = [make_mail(f"Message {n}", sender=f"c{n}@old.example") for n in range(120)]
    chunks = [raws[start : start + 20] for start in range(0, len(raws), 20)]

    with PreparePool(1, Limits(), ThreadSettings()) as pool:
        [handover] = tmp_path.glob("mailbot-import-*")
        got = list(pool.prepared(iter(chunks)))
        assert list(handover.iterdir()) == []  # each piece's file went when it was read

    assert [chunk for chunk, _ in got] == chunks  # the chunks as given, in order
    prepared = [item for _, items in got for item in items]
    assert [p.raw_sha256 for p in prepared] == [hashlib.sha256(r).hexdigest() for r in raws]
    subjects = [p.mail.subject for p in prepared if not isinstance(p.mail, Rejected)]
    assert subjects == [f"Message {n}" for n in range(120)]
    assert 0 < len(_PREPARED_HERE) < len(raws)  # some here, the rest in the pool
    assert not list(tmp_path.glob("mailbot-import-*"))  # the handover folder is gone


def test_the_handover_folder_goes_when_the_import_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    raws = [make_mail(f"Message {n}") for n in range(10)]
    with (
        pytest.raises(RuntimeError, match="database went away"),
        PreparePool(1, Limits(), ThreadSettings()) as pool,
    ):
        for _chunk in pool.prepared(iter([raws])):
            raise RuntimeError("database went away")
    assert not list(tmp_path.glob("mailbot-import-*"))


def test_the_pool_starts_on_the_mailbox_before_the_first_chunk_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``prepared`` hands the first pieces over at once: the pool parses while the
    importing process opens the database, before it asks for the first chunk."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    raws = [make_mail(f"Message {n}") for n in range(10)]
    with PreparePool(1, Limits(), ThreadSettings()) as pool:
        [handover] = tmp_path.glob("mailbot-import-*")
        chunks = pool.prepared(iter([raws]))
        deadline = time.monotonic() + 30
        while not list(handover.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(handover.iterdir()), "the pool prepared nothing before it was asked"
        [(chunk, prepared)] = list(chunks)
    assert chunk == raws and len(prepared) == len(raws)
