"""``sharedstate serve``: the manager server's own settings (``serve.py``)."""

from __future__ import annotations

import socket

from sharedstate.backends.manager import EXPOSED, Registry, RegistryManager
from sharedstate.serve import _no_delay


def test_the_server_answers_without_nagles_delay():
    """multiprocessing writes a reply of more than 16 KB in two parts; with Nagle's
    algorithm on the server's socket the second part waited for the client's delayed
    ACK (about 40 ms a read of a large object). The connections it accepts inherit
    TCP_NODELAY from its listening socket."""
    registry = Registry()
    RegistryManager.register("registry", callable=lambda: registry, exposed=EXPOSED)
    server = RegistryManager(address=("127.0.0.1", 0), authkey=b"test-key-test").get_server()
    try:
        _no_delay(server)
        listening = server.listener._listener._socket
        client = socket.create_connection(listening.getsockname()[:2], timeout=5)
        accepted, _ = listening.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            accepted.close()
            client.close()
    finally:
        server.listener.close()
