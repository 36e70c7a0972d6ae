"""A loopback TCP relay that can go silent: a real "silent TCP drop" for IMAP tests.

``freeze()`` stops forwarding bytes on every connection open at that moment without
closing anything, exactly like a NAT box or firewall that forgot the connection: the
client sees no FIN, no RST, just silence.  Connections made after the freeze are
relayed normally, so a client that notices and reconnects gets through.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from support.servers import free_port


class FreezableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._frozen: set[socket.socket] = set()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="freezable-proxy", daemon=True)
        self.connections = 0

    def start(self) -> FreezableProxy:
        self._thread.start()
        return self

    def freeze(self) -> None:
        """Everything currently open goes silent (and stays open)."""
        with self._lock:
            for a, b in self._pairs:
                self._frozen.update((a, b))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for a, b in self._pairs:
                a.close()
                b.close()
        self._listener.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    self._accept(selector)
                else:
                    self._relay(selector, key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self, selector: selectors.BaseSelector) -> None:
        client, _ = self._listener.accept()
        upstream = socket.create_connection(self.target, timeout=5)
        client.setblocking(False)
        upstream.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))
            self.connections += 1
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _relay(
        self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket
    ) -> None:
        with self._lock:
            frozen = source in self._frozen
        if frozen:  # swallow: stop watching, never answer, never close
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(source)
            return
        try:
            data = source.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            for sock in (source, sink):
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
                sock.close()
            return
        sink.setblocking(True)
        try:
            sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.setblocking(False)
