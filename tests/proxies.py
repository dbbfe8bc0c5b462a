"""TCP proxies in front of a real server, for tests of what a client sees when the
network misbehaves: a lost reply, a held reply, a slow reply.

A lost reply is the fault the engine must never guess about: the request reached the
server and took effect, and the client only sees its connection break. Held and delayed
replies are a paused or distant server, seen from the client. A real server sits behind
each proxy; nothing is simulated but what happens to the replies on the way back.

The proxies share one forwarding loop (:class:`ForwardingProxy`) and differ only in what
they do to a reply before passing it on. SQLite has no network to hold replies on, so its
stall (:func:`hold_sqlite`) is a connection that keeps the write lock instead."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit


class ForwardingProxy:
    """Forwards a loopback port to ``target``, a pair of threads per connection; every
    chunk the server sends back goes through :meth:`_reply` first."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _reply(self) -> bool:
        """Called before each chunk of a reply is passed on (it may wait); False loses the
        chunk and breaks its connection."""
        return True

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
                if replies and not self._reply():
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


class ReplyDroppingProxy(ForwardingProxy):
    """After ``drop()``, the next reply from the server is swallowed and its connection
    closed (the request had been delivered)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._drop = threading.Event()
        self._meanwhile: Callable[[], None] | None = None
        self.dropped = 0
        super().__init__(target)

    def drop(self, meanwhile: Callable[[], None] | None = None) -> None:
        """Loses the next reply; ``meanwhile`` runs after the request took effect and
        before the client's connection breaks (what other clients do in that moment)."""
        self._meanwhile = meanwhile
        self._drop.set()

    def _reply(self) -> bool:
        if not self._drop.is_set():
            return True
        self._drop.clear()
        self.dropped += 1
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return False


class HoldingProxy(ForwardingProxy):
    """While ``release`` is cleared, every reply waits until it is set again (a paused
    server, seen from the client)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.release = threading.Event()
        self.release.set()
        super().__init__(target)

    def _reply(self) -> bool:
        self.release.wait()
        return True

    def hold_for(self, seconds: float) -> threading.Timer:
        """Holds every reply for ``seconds`` from now; the timer that releases them."""
        self.release.clear()
        timer = threading.Timer(seconds, self.release.set)
        timer.start()
        return timer

    def close(self) -> None:
        self.release.set()
        super().close()


class DelayingProxy(ForwardingProxy):
    """Holds every chunk of every reply back ``delay`` seconds (a slow network)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.delay = delay
        super().__init__(target)

    def _reply(self) -> bool:
        if self.delay:
            time.sleep(self.delay)
        return True


def hold_sqlite(path: str | os.PathLike[str], seconds: float) -> threading.Thread:
    """Stalls the SQLite file at ``path`` for ``seconds``: another connection takes the
    write lock, so every writer waits. Returns once the lock is held (the stall has begun),
    with the thread that lets it go."""
    ready = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the write lock: every writer waits
        ready.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


ProxyT = TypeVar("ProxyT", bound=ForwardingProxy)


@contextmanager
def proxy_in_front(
    url: str, make: Callable[[tuple[str, int]], ProxyT], default_port: int = 0
) -> Iterator[tuple[str, ProxyT]]:
    """A proxy made by ``make(target)`` in front of the server of ``url``; yields the URL
    through it and the proxy, and closes the proxy afterwards."""
    parts = urlsplit(url)
    proxy = make((parts.hostname or "127.0.0.1", parts.port or default_port))
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        proxy.close()


@contextmanager
def dropping_proxy(url: str) -> Iterator[tuple[str, ReplyDroppingProxy]]:
    """A reply-dropping proxy in front of the server of ``url``; yields the URL through it
    and the proxy."""
    with proxy_in_front(url, ReplyDroppingProxy) as proxied:
        yield proxied
