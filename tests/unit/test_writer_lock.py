"""The SQLite writer lock: one writer across processes, re-entrant in a thread, and
``contended()`` telling the holder that another writer (process or thread) waits."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailbot.store.writer_lock import WriterLock, lock_path


def _hold_and_log(lock_file: str, log_file: str) -> None:
    """Child process: take the lock, note it in ``log_file``, release."""
    lock = WriterLock(Path(lock_file))
    with lock, open(log_file, "a", encoding="utf-8") as log:
        log.write("child acquired\n")
    lock.close()


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _free(path: Path) -> bool:
    """Whether nobody holds the lock file (probed on a descriptor of our own)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return True


@pytest.fixture
def path(tmp_path: Path) -> Path:
    made = lock_path(str(tmp_path / "m.db"))
    assert made is not None
    return made


def test_lock_path_is_beside_the_database_and_none_in_memory(tmp_path: Path) -> None:
    assert lock_path(str(tmp_path / "m.db")) == Path(f"{tmp_path / 'm.db'}-writer.lock")
    assert lock_path(":memory:") is None
    assert lock_path(None) is None
    assert lock_path("") is None


def test_a_second_process_waits_until_the_holder_releases(path: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "order.log"
    log_file.touch()
    lock = WriterLock(path)
    context = multiprocessing.get_context("spawn")
    with lock:
        child = context.Process(target=_hold_and_log, args=(str(path), str(log_file)))
        child.start()
        try:
            # The child is queued once it shows its intent; it must not get in while we hold.
            assert _wait_until(lock.contended), "the child never queued for the lock"
            time.sleep(0.2)
            assert log_file.read_text() == ""
            with open(log_file, "a", encoding="utf-8") as log:
                log.write("parent released\n")
        except BaseException:
            child.kill()
            raise
    child.join(10)
    assert child.exitcode == 0
    assert log_file.read_text().splitlines() == ["parent released", "child acquired"]
    assert not lock.contended()
    lock.close()


def test_contended_while_another_process_waits(path: Path, tmp_path: Path) -> None:
    lock = WriterLock(path)
    context = multiprocessing.get_context("spawn")
    with lock:
        assert not lock.contended()  # alone
        child = context.Process(target=_hold_and_log, args=(str(path), str(tmp_path / "c.log")))
        child.start()
        try:
            assert _wait_until(lock.contended)
            assert lock.contended()  # and stays so while the child waits
        except BaseException:
            child.kill()
            raise
    child.join(10)
    assert child.exitcode == 0
    with lock:
        assert not lock.contended()  # the waiter is gone
    lock.close()


def test_contended_while_a_thread_waits_then_not_after(path: Path) -> None:
    lock = WriterLock(path)
    got = threading.Event()

    def take() -> None:
        with lock:
            got.set()

    lock.__enter__()
    thread = threading.Thread(target=take, daemon=True)
    try:
        assert not lock.contended()
        thread.start()
        assert _wait_until(lock.contended), "the thread never showed it waits"
        assert not got.is_set()
    finally:
        lock.__exit__(None, None, None)
    thread.join(5)
    assert got.is_set()
    with lock:
        assert not lock.contended()
    lock.close()


def test_contended_sees_a_thread_waiting_on_another_instance(path: Path) -> None:
    """Two stores of one database in one process queue on the file, like two processes."""
    holder, other = WriterLock(path), WriterLock(path)
    got = threading.Event()

    def take() -> None:
        with other:
            got.set()

    holder.__enter__()
    thread = threading.Thread(target=take, daemon=True)
    try:
        thread.start()
        assert _wait_until(holder.contended)
        time.sleep(0.05)
        assert not got.is_set()  # the file lock keeps it out
    finally:
        holder.__exit__(None, None, None)
    thread.join(5)
    assert got.is_set()
    with holder:
        assert not holder.contended()
    holder.close()
    other.close()


def test_reentrant_in_one_thread_and_held_until_the_outermost_exit(path: Path) -> None:
    lock = WriterLock(path)
    with lock:
        with lock:
            assert not _free(path)
        assert not _free(path)  # the inner exit must not drop the file lock
        with lock:
            pass
        assert not _free(path)
    assert _free(path)
    lock.close()


def test_without_a_path_it_still_serialises_threads() -> None:
    lock = WriterLock(None)
    with lock, lock:
        assert not lock.contended()
    lock.close()


def _enter_in_thread(
    lock: WriterLock, name: str, order: list[str], urgent: bool = False
) -> threading.Thread:
    def take() -> None:
        with lock.urgent() if urgent else lock:
            order.append(name)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread


def test_a_writer_waiting_for_another_process_lets_an_urgent_one_of_ours_go_first(
    path: Path,
) -> None:
    """The sender waiting for the worker process must not make the listener, which came
    later, wait for the sender's transaction as well."""
    lock = WriterLock(path)
    order: list[str] = []
    with lock.urgent():  # this process has an urgent writer (the daemon)
        pass
    other_process = os.open(path, os.O_RDWR)  # a descriptor of its own: like a process
    fcntl.flock(other_process, fcntl.LOCK_EX)
    try:
        sender = _enter_in_thread(lock, "sender", order)
        assert _wait_until(lambda: not _free_intent(path)), "the sender never queued"
        listener = _enter_in_thread(lock, "listener", order, urgent=True)
        time.sleep(0.1)
        assert order == []
    finally:
        fcntl.flock(other_process, fcntl.LOCK_UN)
        os.close(other_process)
    sender.join(5)
    listener.join(5)
    assert order == ["listener", "sender"]
    assert _free(path)
    lock.close()


def _free_intent(path: Path) -> bool:
    """Whether nobody shows intent to take the lock (the waiters' shared lock)."""
    fd = os.open(f"{path}.intent", os.O_RDWR | os.O_CREAT, 0o660)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
