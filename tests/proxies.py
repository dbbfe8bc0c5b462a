"""A TCP proxy that loses a reply on demand, for tests of lost-reply resolution.

A lost reply is the fault the engine must never guess about: the request reached the
server and took effect, and the client only sees its connection break. A real server sits
behind the proxy; nothing is simulated but the broken connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class ReplyDroppingProxy:
    """Forwards a loopback port to ``target``; after ``drop()``, the next reply from the
    server is swallowed and its connection closed (the request had been delivered)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._drop = threading.Event()
        self._meanwhile: Callable[[], None] | None = None
        self.dropped = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def drop(self, meanwhile: Callable[[], None] | None = None) -> None:
        """Loses the next reply; ``meanwhile`` runs after the request took effect and
        before the client's connection breaks (what other clients do in that moment)."""
        self._meanwhile = meanwhile
        self._drop.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            for source, sink, replies in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(source, sink, replies), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if replies and self._drop.is_set():
                    self._drop.clear()
                    self.dropped += 1
                    meanwhile, self._meanwhile = self._meanwhile, None
                    if meanwhile is not None:
                        meanwhile()
                    break  # the reply is lost, and the connection with it
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def dropping_proxy(url: str) -> Iterator[tuple[str, ReplyDroppingProxy]]:
    """A proxy in front of the server of ``url``; yields the URL through it and the proxy."""
    parts = urlsplit(url)
    proxy = ReplyDroppingProxy((parts.hostname or "127.0.0.1", parts.port or 0))
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        proxy.close()
