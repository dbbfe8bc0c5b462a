"""``memcached://[user:password@]host:11211``: records and counters in memcached.

memcached is a cache: it may evict any item, and a restart empties it. So this backend is
for state you can afford to lose, *and* it makes sure a loss is seen rather than papered
over (a counter re-created from its factory would hand out numbers again):

* **Versions** are ours: a record's value is an 8-byte version followed by the data, since
  the store needs versions that only grow; memcached's own CAS value only makes the write
  atomic. A write is ``ms <key> C<cas> c`` (meta set, compare-and-swap), which also returns
  the new CAS value, so the next write of this process needs no read: one round trip per
  object call when the cache is current. A conflict costs two more (the failed set, then a
  ``gets`` of the current value), since memcached cannot return the value it refused.
* **Counters** use memcached's ``incr``, with an ``add`` the first time. memcached
  counters are unsigned, so a counter is stored offset by 2**63 (it may go negative), and
  a negative amount is added as its two's complement: ``incr`` wraps around at 2**64, so
  that sum is exact, where ``decr`` would stop at zero. memcached cannot refuse an add that
  leaves a range, so counters here hold ±2**62 (:attr:`counter_range`), half the 64 bits:
  from any value in range, an amount in range lands within 64 bits, where the result tells
  the truth; an add that lands outside the range is taken back at once (``incr`` of its
  opposite) and refused. Limit, honestly: another add to the same counter in that instant
  sees a value that includes the refused one (only ever at ±4.6e18).
  Call ids are not recorded, so ``counter_outcome`` answers ``UNKNOWN``: an add whose reply
  was lost has an unknown outcome. memcached has no scripts and no atomic step over two
  items, and its meta arithmetic (``ma``) cannot carry an id; recording one would turn every
  add into a read and a compare-and-swap of an item holding the value and the ids (two
  round trips, retried under contention) in place of one native ``incr``.
* **No parts** (``keeps_parts`` is False): memcached has no atomic step over two items, so
  a large object stays one item, written and read whole (the object layer never parts
  it here); the item size limit (1 MB by default, ``-I``) bounds an object's state.
* **Errors**: one raised once a request was being sent is marked ``request_sent``; one
  raised before (refused, connect timeout) is not. An idle pooled connection that the server
  closed is dropped before use, and sockets close with ``SO_LINGER`` 0, so that a request
  given up on is dropped by the kernel instead of being delivered later.
* **Eviction is detected** with an "existed" marker, a tiny item written beside every record
  and counter when it is created. A read that finds the marker but not the item raises
  :class:`~sharedstate.errors.StateLostError` (in any process, not only one that had the
  item cached; a missing marker is written again). A restart of memcached (detected from
  its pid and start time on each new connection) raises it once per process too.
  Limits, honestly: when the item *and* its marker are both evicted, or after the one
  StateLostError that follows a restart, a process that never saw the item cannot tell, and
  the factory runs again. Use a durable backend for state that must never restart.
* ``keys()`` reads an index item (one per namespace) to which every new item's key is
  appended: memcached cannot list its keys reliably. The index may be evicted too (then
  ``keys()`` misses names, nothing else breaks); names longer than memcached allows are
  kept under a hash and are not listed.

Authentication is memcached's ASCII auth (``-Y authfile``): user and password from the URL.
TLS: ``?tls=true`` (memcached built with TLS), with ``?ssl_ca_certs=`` to trust a private CA.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote, urlsplit

from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptStoreError,
    InvalidURLError,
    SharedStateError,
    StateLostError,
    StateTooLargeError,
    StoreTimeoutError,
    mark_sent,
)
from .base import Backend, PartsWrite, Record, time_left
from .pool import IdlePool, readable_now

T = TypeVar("T")

_VERSION = struct.Struct(">Q")
OFFSET = 1 << 63  # counters are unsigned in memcached; ours may go below zero
_WRAP = 1 << 64  # memcached's incr wraps around here
MAX_KEY = 250
_SAFE = "!#$&'()*+,-./:;<=>?@[]^_`{|}~"


class MemcachedBackend(Backend):
    """Versioned records and offset counters in memcached, with eviction markers."""

    schemes = ("memcached",)
    parameters: ClassVar[frozenset[str]] = frozenset(
        {"connect_timeout", "namespace", "tls", "ssl_ca_certs"}
    )
    may_evict = True
    counter_range = (-(2**62), 2**62 - 1)

    def __init__(self, url: str, options: dict[str, str], timeout: float = 10.0) -> None:
        super().__init__(url, options, timeout)
        parts = urlsplit(url)
        try:
            self.host, self.port = parts.hostname or "localhost", parts.port or 11211
            self.connect_timeout = float(options.get("connect_timeout", min(2.0, self.timeout)))
        except ValueError as exc:
            raise InvalidURLError(f"bad port or number in {self.describe()}: {exc}") from None
        self._credentials = (
            (unquote(parts.username or ""), unquote(parts.password or ""))
            if parts.username
            else None
        )
        self._tls: ssl.SSLContext | None = None
        if options.get("tls", "false").lower() in ("1", "true", "yes"):
            self._tls = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
        self.namespace = options.get("namespace", "sharedstate:")
        self._index = (self.namespace + "%index").encode("ascii")
        self._where = f"{self.host}:{self.port}"
        #: memcached key -> (our version, memcached's CAS value) last seen by this process
        self._cas: dict[bytes, tuple[int, bytes]] = {}
        self._server_identity: tuple[int, int] | None = None
        self._pool: IdlePool[Client] = IdlePool(self._connect, Client.close)

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> Client:
        left = time_left(self.timeout)  # connecting and the handshake end by the deadline
        client = Client(
            (self.host, self.port),
            connect_timeout=min(self.connect_timeout, left),
            timeout=left,
            no_delay=True,
            default_noreply=False,
            tls_context=self._tls,
        )
        try:
            if self._credentials is not None:
                self._authenticate(client, *self._credentials)
            stats = client.stats()
            client.timeout = self.timeout  # each request then sets what its deadline leaves
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (BackendUnavailableError, ConfigurationError):
            client.close()
            raise
        except MemcacheError as exc:
            client.close()
            if "authentication" in str(exc) or "unauthenticated" in str(exc):
                raise BackendUnavailableError(
                    f"memcached at {self._where} refused the credentials of {self.describe()}: {exc}"
                ) from exc
            raise self._translate(exc, sent=False) from exc
        except (OSError, EOFError) as exc:
            client.close()
            raise self._translate(exc, sent=False) from exc
        # pid and start time name one run of the server; a new run starts empty
        identity = (int(stats.get(b"pid", 0)), int(time.time()) - int(stats.get(b"uptime", 0)))
        known, self._server_identity = self._server_identity, identity
        if known is not None and (known[0] != identity[0] or abs(known[1] - identity[1]) > 2):
            self._cas.clear()
            self._pool.release(client)
            raise StateLostError(
                f"memcached at {self._where} was restarted: every record and counter it held "
                "is gone; names used before start again from nothing on the next call"
            )
        return client

    def _authenticate(self, client: Client, user: str, password: str) -> None:
        """memcached's ASCII auth: a ``set`` whose data is "user password", sent first. A
        server started without ``-Y`` would store it as an ordinary item under the user's
        name, readable by anyone, and every command would then "work" unauthenticated. So
        ask first: a server that wants auth answers any other command "unauthenticated"."""
        try:
            client.raw_command(b"version")
        except MemcacheClientError as exc:
            if b"unauthenticated" not in exc.args[0]:
                raise
        else:
            raise ConfigurationError(
                f"memcached at {self._where} does not ask for authentication (it was started "
                f"without -Y), but {self.describe()} carries credentials: they were not sent, "
                "since that server would store them as an ordinary item; remove them from the "
                "URL, or start memcached with -Y <authfile>"
            )
        try:
            reply = client.raw_command(
                b"set %s 0 0 %d\r\n%s %s"
                % (user.encode(), len(user) + len(password) + 1, user.encode(), password.encode())
            )
        except MemcacheError:  # its text may quote the command, and with it the password
            reply = None
        if reply != b"STORED":
            raise BackendUnavailableError(
                f"memcached at {self._where} refused the credentials of {self.describe()}"
            )

    def _translate(self, exc: BaseException, sent: bool) -> SharedStateError:
        """The one mapping of pymemcache's and the socket's errors to ours; ``sent``: a
        request may have reached the server (marked with :func:`~sharedstate.errors.mark_sent`)."""
        error: SharedStateError
        if isinstance(exc, (socket.timeout, TimeoutError)):
            error = StoreTimeoutError(
                f"memcached at {self._where} did not answer within {self.timeout:g} s "
                f"(connect: {self.connect_timeout:g} s; see ?timeout=)"
            )
        elif isinstance(exc, MemcacheError) and not isinstance(exc, MemcacheUnexpectedCloseError):
            # the server answered with an error; any earlier request of the same step may
            # still have taken effect
            error = BackendUnavailableError(f"memcached at {self._where} failed: {exc}")
        else:
            detail = getattr(exc, "strerror", None) or exc
            error = BackendUnavailableError(f"cannot reach memcached at {self._where}: {detail}")
        return mark_sent(error) if sent else error

    def _acquire(self) -> Client:
        """An idle connection the server has not closed (it restarted), or a new one:
        nothing is sent on a dead socket, so such a call does not fail needlessly."""
        pool = self._pool
        client = pool.acquire()
        while client.sock is None or readable_now(client.sock.fileno()):
            pool.discard(client)  # idle yet readable: closed by the server, or out of step
            client = pool.acquire()
        return client

    def _run(self, work: Callable[[Client], T]) -> T:
        pool = self._pool
        client = self._acquire()
        try:
            client.sock.settimeout(time_left(self.timeout))  # what the call's deadline leaves
            result = work(client)
        except (MemcacheError, OSError, EOFError) as exc:
            pool.discard(client)
            raise self._translate(exc, sent=True) from exc
        except BaseException:
            pool.discard(client)
            raise
        pool.release(client)
        return result

    # -- keys ----------------------------------------------------------------------------
    def _key(self, key: str) -> bytes:
        mapped = (self.namespace + quote(key, safe=_SAFE)).encode("ascii")
        if len(mapped) > MAX_KEY - 2:  # room for the marker's prefix
            mapped = (self.namespace + "#" + hashlib.sha256(key.encode()).hexdigest()).encode()
        return mapped

    @staticmethod
    def _marker(mapped: bytes) -> bytes:
        return b"!" + mapped

    def _lost(self, what: str, key: str) -> StateLostError:
        return StateLostError(
            f"the {what} {key!r} existed in memcached at {self._where} but is gone (evicted, or "
            "flushed); it is not re-created, since that would repeat what it already handed "
            "out; restore it or delete the name to start again"
        )

    # -- records -------------------------------------------------------------------------
    def _read(self, client: Client, key: str, mapped: bytes) -> Record | None:
        marker = self._marker(mapped)
        found = client.gets_many([mapped, marker])
        item = found.get(mapped)
        if item is None and marker in found:
            # An item is written before its marker, so this marker says the item existed
            # by the time it was read; but the item may have been created just after our
            # look at it (one multi-get is not one instant). Look again before calling it lost.
            item = client.gets(mapped)
            if item is None or item[0] is None:
                self._cas.pop(mapped, None)
                raise self._lost("record", key)
        if item is None:
            self._cas.pop(mapped, None)
            return None
        value, cas = item
        if len(value) < _VERSION.size:
            raise CorruptStoreError(f"the record {key!r} in memcached at {self._where} is damaged")
        version = _VERSION.unpack_from(value)[0]
        self._cas[mapped] = (version, cas)
        if marker not in found:  # written again if it was evicted (or a writer died early)
            client.set(marker, b"1", noreply=True)
        return Record(version, bytes(value[_VERSION.size :]))

    def load(self, key: str, since: int | None = None) -> Record | None:
        mapped = self._key(key)
        return self._run(lambda client: self._read(client, key, mapped))

    def compare_and_set(
        self, key: str, expected: int | None, data: bytes, parts: PartsWrite | None = None
    ) -> tuple[bool, Record | None]:
        mapped = self._key(key)
        version = (expected or 0) + 1
        payload = _VERSION.pack(version) + data

        def write(client: Client) -> tuple[bool, Record | None]:
            if expected is None:
                flags = b"c ME"  # add: only if absent
            else:
                seen = self._cas.get(mapped)
                if seen is None or seen[0] != expected:
                    current = self._read(client, key, mapped)
                    if current is None or current.version != expected:
                        return False, current
                    seen = self._cas[mapped]
                flags = b"c C" + seen[1]
            try:
                reply = client.raw_command(
                    b"ms %s %d %s\r\n%s" % (mapped, len(payload), flags, payload)
                )
            except MemcacheServerError as exc:
                if "too large" not in str(exc):
                    raise
                raise StateTooLargeError(
                    f"the state of {key!r} is {len(payload)} bytes encoded, more than memcached "
                    f"at {self._where} takes in one item (its -I limit, 1 MB by default): "
                    "nothing was stored; keep less in this object, or raise memcached's -I"
                ) from exc
            if reply.startswith(b"HD"):
                self._cas[mapped] = (version, reply.split(b" c", 1)[1].split(b" ", 1)[0])
                if expected is None:
                    self._created(client, mapped)
                return True, Record(version, data)
            if reply.startswith(b"NF"):  # compared against an item that vanished
                self._cas.pop(mapped, None)
                return False, self._read(client, key, mapped)  # lost, or absent after all
            if reply.startswith((b"EX", b"NS")):
                return False, self._read(client, key, mapped)
            raise CorruptStoreError(f"memcached at {self._where} answered {reply!r} to a write")

        return self._run(write)

    def delete(self, key: str) -> bool:
        mapped = self._key(key)
        self._cas.pop(mapped, None)
        return self._run(lambda client: self._delete(client, mapped))

    @staticmethod
    def _delete(client: Client, mapped: bytes) -> bool:
        existed = client.delete(mapped, noreply=False)
        marked = client.delete(MemcachedBackend._marker(mapped), noreply=False)
        return bool(existed or marked)  # a lost item (marker only) was there too

    def _created(self, client: Client, mapped: bytes) -> None:
        """Marks a new item as existing and lists it in the namespace's index; sent without
        waiting for replies (noreply), so creating costs no extra round trip."""
        client.set(self._marker(mapped), b"1", noreply=True)
        client.add(self._index, b"", noreply=True)
        client.append(self._index, mapped + b"\n", noreply=True)

    def keys(self, prefix: str) -> Iterable[str]:
        """Names from the namespace's index (memcached cannot list its keys reliably: its
        LRU crawler is asynchronous and busy at times), those still present."""
        start = self._key(prefix)
        listed = self._run(lambda client: client.get(self._index)) or b""
        candidates = sorted({k for k in listed.split(b"\n") if k.startswith(start)})
        present: set[bytes] = set()
        for first in range(0, len(candidates), 100):
            chunk = candidates[first : first + 100]
            present.update(self._run(lambda client, chunk=chunk: client.get_many(chunk)))  # type: ignore[misc]
        skip = len(self.namespace)
        return [
            unquote(k.decode("ascii")[skip:])
            for k in candidates
            if k in present and k[skip : skip + 1] != b"#"
        ]

    # -- counters ------------------------------------------------------------------------
    def counter_add(self, key: str, delta: int, call_id: str | None = None) -> int:
        self.check_counter(key, delta, "amount")
        mapped = self._key(key)
        low, high = self.counter_range

        def bump(client: Client) -> Any:
            value = client.incr(mapped, delta % _WRAP, noreply=False)
            if value is not None and not low <= int(value) - OFFSET <= high:
                client.incr(mapped, -delta % _WRAP, noreply=False)  # take it back
                raise self.counter_overflow(key, f"adding {delta} would take it out of range")
            return value

        def add(client: Client) -> int:
            while True:
                value = bump(client)
                if value is not None:
                    return int(value) - OFFSET
                if client.get(self._marker(mapped)) is not None:
                    # made by another process between our incr and this look (an item is
                    # written before its marker)? one more incr tells
                    value = bump(client)
                    if value is not None:
                        return int(value) - OFFSET
                    raise self._lost("counter", key)
                if client.add(mapped, b"%d" % (OFFSET + delta), noreply=False):
                    self._created(client, mapped)
                    return delta
                # another process created it in between: add to theirs

        return self._run(add)

    def counter_get(self, key: str) -> int:
        mapped = self._key(key)
        marker = self._marker(mapped)
        found = self._run(lambda client: client.get_many([mapped, marker]))
        if mapped not in found:
            if marker in found:
                raise self._lost("counter", key)
            return 0
        return int(found[mapped]) - OFFSET

    def counter_set(self, key: str, value: int) -> None:
        self.check_counter(key, value)
        mapped = self._key(key)

        def put(client: Client) -> None:
            client.set(mapped, b"%d" % (OFFSET + value), noreply=False)
            self._created(client, mapped)

        self._run(put)

    def close(self) -> None:
        self._pool.drain()
