"""A real Dovecot IMAP server for tests, from a private config in a temporary directory.

The recipe (verified as root on Debian's ``dovecot-imapd``): everything Dovecot writes
(base_dir, state_dir, log, maildirs) lives in one temp directory, passwords come from a
``passwd-file`` with ``{PLAIN}`` entries, the listener is on loopback at a free port, and
the server is stopped by signalling the pid in ``<base_dir>/master.pid`` (and, as
systemd would, the session processes under it).  ``tls=True`` adds a self-signed
certificate for "localhost", IMAPS on ``tls_port`` and STARTTLS on ``port``.

Use the ``dovecot`` fixture (tests/conftest.py); it skips with a one-line reason when the
``dovecot`` binary is missing or we are not root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imapclient import IMAPClient

from support.servers import free_port, wait_for_port

USER = "support@example.com"
PASSWORD = "s3cret-imap-pass"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = {ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# No stats process: otherwise every process waits 5 s for it at shutdown.
stats_writer_socket_path =
default_login_user = dovenull
default_internal_user = dovecot
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
# A throw-away test server: no fsync per message.
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{extra}
"""


class DovecotUnavailable(RuntimeError):
    """Dovecot cannot run here (binary missing, not root); tests skip with this reason."""


def unavailable_reason() -> str | None:
    if shutil.which("dovecot") is None:
        return "dovecot not installed (apt-get install dovecot-imapd)"
    if os.geteuid() != 0:
        return "the Dovecot test server needs root (it runs mail as the dovecot user)"
    try:
        pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError:
        return "users dovecot/dovenull missing (install dovecot-imapd)"
    return None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Dovecot:
    """One private Dovecot instance: ``start``, ``stop``, ``restart`` and an IMAP client."""

    def __init__(
        self,
        root: Path,
        *,
        users: dict[str, str] | None = None,
        capability: str | None = None,
        extra_config: str = "",
        tls: bool = False,
    ) -> None:
        self.root = root
        self.extra_config = extra_config
        self.port = free_port()
        # With tls=True: a self-signed certificate for "localhost" (cert_path), IMAPS on
        # tls_port, STARTTLS on port; without, no TLS at all and no IMAPS listener.
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.cert_path = root / "cert.pem"
        self.users = users or {USER: PASSWORD}
        self.capability = capability
        self.config_path = root / "dovecot.conf"
        self.host = "127.0.0.1"

    # ------------------------------------------------------------ lifecycle

    def _write_config(self) -> None:
        dovecot = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chown(self.root / "mail", dovecot.pw_uid, dovecot.pw_gid)
        users = "".join(f"{name}:{{PLAIN}}{pw}::::::\n" for name, pw in self.users.items())
        (self.root / "users").write_text(users)
        extra = ""
        ssl = "no"
        if self.tls:
            key = self.root / "key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                 "-keyout", str(key), "-out", str(self.cert_path)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            ssl = "yes"
            extra += f"ssl_cert = <{self.cert_path}\nssl_key = <{key}\n"
        if self.capability is not None:
            extra += f"protocol imap {{\n  imap_capability = {self.capability}\n}}\n"
        self.config_path.write_text(
            _CONFIG.format(
                root=self.root, port=self.port, tls_port=self.tls_port, ssl=ssl, extra=extra
            )
            + self.extra_config,
            encoding="utf-8",
        )

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "master.pid"

    def start(self) -> Dovecot:
        if not self.config_path.exists():
            self._write_config()
        # The master daemonises; its children inherit our stdio, so no pipes here.
        errors = self.root / "start.err"
        with open(errors, "wb") as err:
            code = subprocess.call(
                ["dovecot", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                timeout=30,
            )
        if code != 0:
            raise RuntimeError(f"dovecot did not start: {errors.read_text()}\n{self.log()}")
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 15.0) -> None:
        """Wait for a greeting, then log out properly.

        A bare TCP connect-and-close (wait_for_port) leaves an imap-login process waiting
        for auth that makes the next shutdown take 5 seconds longer.
        """
        wait_for_port(self.port, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = IMAPClient(self.host, self.port, ssl=False, timeout=5)
                client.logout()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master and every process under it, as ``systemctl stop`` does.

        Signalling only the master (what master.pid is for) lets the per-session imap
        processes linger for about ten seconds, still serving their clients.
        """
        pid = self._pid()
        if pid is None:
            return
        family = [pid, *_descendants(pid)]
        for member in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(member) for member in family):
            if time.monotonic() > deadline:
                for member in family:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(member, signal.SIGKILL)
                break
            time.sleep(0.02)
        # The master removes its pid file on a clean exit; make sure a restart starts fresh.
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------ a test-side IMAP client

    @contextmanager
    def client(self, user: str = USER) -> Iterator[IMAPClient]:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        try:
            client.login(user, self.users[user])
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def append(
        self, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = (), user: str = USER
    ) -> None:
        with self.client(user) as client:
            client.append(folder, raw, flags=tuple(flags))

    def deliver_to_maildir(self, raw: bytes, user: str = USER) -> Path:
        """Drop a message into the INBOX maildir as a local delivery agent would.

        Works while Dovecot is down: the message is there when it comes back.
        """
        dovecot = pwd.getpwnam("dovecot")
        maildir = self.root / "mail" / user
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
            os.chown(maildir / sub, dovecot.pw_uid, dovecot.pw_gid)
        os.chown(maildir, dovecot.pw_uid, dovecot.pw_gid)
        name = f"{time.time_ns()}.P{os.getpid()}.mailbot-test"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, dovecot.pw_uid, dovecot.pw_gid)
        final = maildir / "new" / name
        tmp.rename(final)
        return final

    def append_many(self, raws: Iterable[bytes], folder: str = "INBOX", user: str = USER) -> None:
        """MULTIAPPEND in rounds of 100: a 1,000-message backlog in about a second."""
        batch: list[bytes] = []
        with self.client(user) as client:
            for raw in raws:
                batch.append(raw)
                if len(batch) == 100:
                    client.multiappend(folder, batch)
                    batch = []
            if batch:
                client.multiappend(folder, batch)

    def messages(self, folder: str = "INBOX", user: str = USER) -> dict[int, bytes]:
        """UID → raw bytes of every message in ``folder`` (an absent folder is empty)."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return {uid: item[b"BODY[]"] for uid, item in data.items()}

    def count(self, folder: str = "INBOX", user: str = USER) -> int:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])

    def flags(self, folder: str = "INBOX", user: str = USER) -> dict[int, tuple[bytes, ...]]:
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            return dict(client.get_flags(uids)) if uids else {}

    def uidvalidity(self, folder: str = "INBOX", user: str = USER) -> int:
        with self.client(user) as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def set_uidvalidity(self, value: int, folder: str = "INBOX", user: str = USER) -> None:
        """Change a folder's UIDVALIDITY with doveadm (what a rebuilt server index does)."""
        result = subprocess.run(
            [
                "doveadm",
                "-c",
                str(self.config_path),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(value),
                folder,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm mailbox update failed: {result.stderr.strip()}")


@contextmanager
def running_dovecot(**kwargs: object) -> Iterator[Dovecot]:
    """Start a private Dovecot in a fresh world-traversable temp directory; remove it after.

    pytest's tmp_path is under a root-only (0700) directory that Dovecot's unprivileged
    processes cannot enter, hence a directory of our own.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise DovecotUnavailable(reason)
    root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root, **kwargs)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


PASSWORD_ENV = "MAILBOT_TEST_IMAP_PASSWORD"


def imap_section(server: Dovecot, **overrides: object) -> dict[str, object]:
    """An ``[intake.imap]`` table for ``server``; the password comes from PASSWORD_ENV."""
    section: dict[str, object] = {
        "enabled": True,
        "host": server.host,
        "port": server.port,
        "tls": "none",
        "username": USER,
        "password_env": PASSWORD_ENV,
        "timeout": 10.0,
        "reconnect_max": 2.0,
    }
    return section | overrides
