"""``uvicorn --workers N`` with TCP_NODELAY on every accepted connection (uvicorn#3149).

    python benchmarks/nodelay_uvicorn.py --port 8000 --workers 4 [--app-dir DIR] module:app

Why: with ``--workers`` uvicorn's supervisor binds the listening socket itself
(``Config.bind_socket``) and leaves its ``proto`` at 0. Accepted sockets inherit it, and
asyncio turns on TCP_NODELAY only for sockets that say ``proto == IPPROTO_TCP``; so Nagle's
algorithm stays on, and on a keep-alive connection the body of each response (written
after its headers) waits for the client's delayed ACK: ~40 ms per request, a cap that
makes every app look alike in a benchmark. The single-process path (no ``--workers``) is
not affected: asyncio builds that listener from ``getaddrinfo``, which says proto 6.

How: ``NoDelayConfig.bind_socket`` re-wraps the bound socket with ``proto=IPPROTO_TCP``
(the same file descriptor, nothing else changed); the workers receive it pickled, proto
included, and asyncio sets TCP_NODELAY on each connection they accept. The rest is what
``uvicorn.run`` does for ``workers > 1``.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess


class NoDelayConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return sock
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--app-dir", default=None)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    if args.app_dir:
        sys.path.insert(0, args.app_dir)  # the workers inherit the parent's sys.path
    config = NoDelayConfig(
        args.app, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


if __name__ == "__main__":
    main()
