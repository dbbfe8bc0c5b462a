"""The store: one URL, and the shared objects, counters, locks and transactions on it.

This module is the facade; the parts live beside it:

* ``engine.py``: the one atomic step (cache-first compare-and-set, deadline, retry bound and
  hold, call ids and outcome resolution) that everything below uses;
* ``objects.py``: the proxy a user holds and how method calls and transactions run;
* ``counters.py``, ``locks.py``: native counters, leased and fenced locks;
* ``combining.py``: concurrent calls of one process on one name share one step;
* ``backends/``: one module per URL scheme, keeping versioned records and counters.

Every call gets its deadline (``?timeout=``, default 10 s) when its caller calls, and ends by
then with a result or an error that says truthfully whether it took effect.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .backends import open_backend
from .backends.base import Backend, PartsWrite
from .bounded import trim
from .classrefs import same_class
from .codecs import Codec, make_codec
from .combining import Call, Combiner
from .counters import Counter
from .engine import Engine
from .errors import ClassMismatchError, ConfigurationError, StateLostError
from .frames import Frame, Split
from .locks import Lease, Lock
from .names import check_name
from .objects import Objects, ObjectSpec
from .options import StoreOptions
from .parted import is_parted
from .proxy import SharedObject

T = TypeVar("T")

OBJECT, COUNTER, LEASE = "o:", "c:", "l:"
KINDS = {OBJECT: "object", COUNTER: "counter", LEASE: "lock"}

_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_threads()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Store:
    """A connection to one store URL; makes shared objects, counters, locks, transactions.

    Nothing connects until first use, and each process connects on its own, so a store is
    safe to create at import time, before a server forks its workers.
    """

    def __init__(
        self,
        url: str,
        *,
        codec: str | None = None,
        secret_key: bytes | str | None = None,
        prefix: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.options = StoreOptions.parse(url, prefix=prefix, timeout=timeout, codec=codec)
        self.url = url
        self.prefix = self.options.prefix
        self.timeout = self.options.timeout
        self.codec: Codec = make_codec(self.options.codec, secret_key)
        self.backend: Backend = open_backend(url, self.options.backend, self.timeout)
        self._engine = Engine(self.backend, self._describe_key)
        self._objects = Objects(self._engine, self.codec, self.timeout)
        #: the declarations of this process: the newest ones (``bounded.py``), and any a
        #: caller still holds the object of (``store.transaction(name)`` finds them)
        self._specs: dict[str, ObjectSpec] = {}
        self._held_specs: weakref.WeakValueDictionary[str, ObjectSpec] = weakref.WeakValueDictionary()
        self._leases = threading.local()  # see Lock._held
        #: the largest fencing token this process saw per lock: tokens go on from there
        #: even if the lock's record is lost (evicted, flushed); kept for the newest
        #: ``locks.TOKEN_NAMES`` locks, so a lock this process has not used among that many
        #: others goes on from its record's token only
        self._tokens: dict[str, int] = {}
        self._forget_threads()
        _STORES.add(self)

    def _forget_threads(self) -> None:
        """Per-process coordination state; made anew in a forked child, where the locks of
        the parent's other threads would otherwise stay locked forever."""
        #: per name, bounded (``bounded.py``): dropping one that is busy is safe, since
        #: a second combiner for a key only loses batching with the first (the engine's
        #: compare-and-set orders their steps)
        self._combiners: dict[str, Combiner] = {}
        self._combiners_lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------
    def object(self, name: str, cls: type[T], *args: Any, **kwargs: Any) -> T:
        """The shared object ``name`` of class ``cls``; ``cls(*args, **kwargs)`` makes its
        first state, and runs only when no state is stored."""
        if not isinstance(cls, type):
            raise TypeError(f"store.object({name!r}, ...) needs a class, got {cls!r}")
        self._check_name(name)
        spec = ObjectSpec(name, self.prefix + OBJECT + name, cls, args, kwargs)
        known = self._specs.get(name) or self._held_specs.get(name)
        if known is not None and not same_class(known.class_path, spec.class_path):
            raise ClassMismatchError(
                f"shared object {name!r} is already declared with class {known.class_path}, "
                f"not {spec.class_path}"
            )
        self._specs.pop(name, None)  # re-inserted: the newest
        self._specs[name] = spec
        self._held_specs[name] = spec
        trim(self._specs)
        return SharedObject(self, spec)  # type: ignore[return-value]

    def counter(self, name: str) -> Counter:
        """The shared integer counter ``name`` (0 until first changed)."""
        self._check_name(name)
        return Counter(self, name, self.prefix + COUNTER + name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> Lock:
        """A leased lock: held for at most ``ttl`` seconds unless extended; waits at most
        ``timeout`` seconds to get it (None: as long as it takes)."""
        self._check_name(name)
        _check_seconds("a lock's ttl", ttl)
        if timeout is not None:
            _check_seconds("a lock's timeout", timeout, zero_ok=True)
        return Lock(self, name, self.prefix + LEASE + name, ttl, timeout)

    @contextmanager
    def transaction(self, target: str | Any, ttl: float | None = None) -> Iterator[Any]:
        """Several calls on one object as one atomic step.

        Yields a private instance holding the current state; what the block leaves in it is
        written when the block ends without an exception (an exception writes nothing).
        Meanwhile other callers of the object wait; if the block outlives ``ttl`` (default:
        half the store's timeout, so that a waiter outlives a holder that died), another
        caller may take over and the block's write is refused with LeaseExpiredError.
        """
        ttl = self.timeout / 2 if ttl is None else ttl
        _check_seconds("a transaction's ttl", ttl)
        with self._objects.transaction(self._spec_for(target), ttl) as instance:
            yield instance

    def names(self) -> list[tuple[str, str]]:
        """(kind, name) of everything stored under this store's prefix: kind is 'object',
        'counter' or 'lock'."""
        found = []
        for key in self.backend.keys(self.prefix):
            marker, name = key[len(self.prefix) : len(self.prefix) + 2], key[len(self.prefix) + 2 :]
            if marker not in KINDS:
                continue
            if marker == OBJECT:
                record = self.backend.load(key)
                if record is None or not self._engine.frame_of(key, record).payload:
                    continue
            found.append((KINDS[marker], name))
        return found

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The stored state of object ``name`` as ``{"class": ..., "state": {...}, "version":
        ...}`` (and ``"items"`` for a dict, list or set subclass), read without its class
        (for ``flask sharedstate show``): a nested value whose class cannot be imported
        shows as a ``classrefs.Stored``. None when nothing is stored."""
        key = self.prefix + OBJECT + name
        record = self.backend.load(key)
        frame = self._engine.frame_of(key, record)
        if record is None or not frame.payload:
            return None
        if is_parted(frame.payload):  # every part, read with the head
            record = self.backend.load(key, 0)
            if record is None:
                return None
            return self._objects.parting.inspect(self._engine.frame_of(key, record).payload, record)
        envelope = self._objects.decode(frame.payload, name, tool=True)
        found = {"class": envelope.get("c"), "state": envelope.get("s"), "version": record.version}
        if "i" in envelope:
            found["items"] = envelope["i"]
        return found

    def delete(self, name: str) -> bool:
        """Forget object or counter ``name`` (the object's factory runs again on next use),
        and end any lease on lock ``name`` (a stuck lock is freed; its tokens go on).

        The object's record becomes a tombstone rather than vanishing, so its versions never
        restart and no process's cache can match other contents."""
        key = self.prefix + OBJECT + name
        self._forget_name(name)
        try:
            _, removed_object = self._engine.run(
                key,
                tombstone,
                time.monotonic() + self.timeout,
            )
        except StateLostError:  # evicted state: deleting the name is how to start again
            removed_object = self.backend.delete(key)
        self._forget_name(name)
        return self.backend.delete(self.prefix + COUNTER + name) or self._free_lock(name) or removed_object

    def _forget_name(self, name: str) -> None:
        """Frees what this process keeps for object and counter ``name`` (a lock's tokens
        are kept: they must never go back)."""
        for key in (self.prefix + OBJECT + name, self.prefix + COUNTER + name):
            self._engine.forget(key)
            self._objects.forget(key)
            with self._combiners_lock:
                self._combiners.pop(key, None)
        self._specs.pop(name, None)  # (one whose object a caller holds stays declared)

    def _free_lock(self, name: str) -> bool:
        """Ends any lease on lock ``name`` (its fencing token is kept: tokens never go back)."""
        key = self.prefix + LEASE + name
        try:
            _, freed = self._engine.run(
                key,
                unhold,
                time.monotonic() + self.timeout,
                wait=False,
            )
        except StateLostError:
            return False
        return bool(freed)

    def close(self) -> None:
        """Close this process's connections; the store reopens them if used again."""
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sharedstate.Store {self.backend.describe()}>"

    # -- objects: the call path ----------------------------------------------------------
    def _call(
        self,
        spec: ObjectSpec,
        method: str | Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        deadline = time.monotonic() + self.timeout
        if self._objects.transactions_open:  # (none: every call's path)
            self._objects.check_not_holding(spec)
        combiner = self._combiners.get(spec.key)
        if combiner is None:
            combiner = self._combiner(
                spec.key,
                functools.partial(self._objects.run_batch, spec),
                functools.partial(self._objects.run_one, spec),
                what=f"a call on shared object {spec.name!r}",
            )
        return combiner.submit((method, args, kwargs), deadline)

    def _combiner(
        self,
        key: str,
        execute: Callable[[list[Call]], None],
        execute_one: Callable[[Any, float], Any] | None = None,
        what: str = "the call",
    ) -> Combiner:
        combiner = self._combiners.get(key)
        if combiner is None:
            with self._combiners_lock:
                combiner = self._combiners.get(key)
                if combiner is None:
                    combiner = self._combiners[key] = Combiner(execute, execute_one, what)
                    trim(self._combiners)
        return combiner

    # -- helpers -------------------------------------------------------------------------
    def _describe_key(self, key: str) -> str:
        marker, name = key[len(self.prefix) : len(self.prefix) + 2], key[len(self.prefix) + 2 :]
        kind = {OBJECT: "shared object", COUNTER: "counter", LEASE: "lock"}.get(marker, "key")
        return f"{kind} {name!r}"

    def _spec_for(self, target: str | Any) -> ObjectSpec:
        if isinstance(target, SharedObject):
            if object.__getattribute__(target, "_store") is not self:
                spec = object.__getattribute__(target, "_spec")
                raise ConfigurationError(
                    f"store.transaction() got shared object {spec.name!r} of another store; "
                    "call transaction() on the store the object was declared with"
                )
            return object.__getattribute__(target, "_spec")
        spec = (self._specs.get(target) or self._held_specs.get(target)) if isinstance(target, str) else None
        if spec is None:
            raise ConfigurationError(
                f"store.transaction({target!r}) needs the name of an object declared with "
                "store.object(name, cls, ...) in this process, or the object itself"
            )
        return spec

    @staticmethod
    def _check_name(name: str) -> None:
        check_name(name)


def tombstone(record: Any, frame: Frame) -> tuple[bytes | Split | None, bool]:
    """The change of ``delete`` on an object: an empty payload (and no parts); True if
    there was state."""
    if is_parted(frame.payload):
        return Split(b"", PartsWrite({}, reset=True)), True
    return (b"" if frame.payload else None), bool(frame.payload)


def unhold(record: Any, frame: Frame) -> tuple[bytes | None, bool]:
    """The change of ``delete`` on a lock: its lease ends, its token stays; True if held."""
    return (None, False) if frame.hold is None else (frame.payload, True)


def _check_seconds(what: str, value: Any, zero_ok: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{what} must be positive, not {value!r}")


def connect(
    url: str,
    *,
    codec: str | None = None,
    secret_key: bytes | str | None = None,
    prefix: str | None = None,
    timeout: float | None = None,
) -> Store:
    """Opens the store at ``url`` (see the README for URLs); connects lazily, per process.

    ``codec="pickle"`` stores any picklable state and needs ``secret_key`` (entries are
    signed and checked before unpickling); the default JSON codec never runs code on read.
    """
    return Store(url, codec=codec, secret_key=secret_key, prefix=prefix, timeout=timeout)


__all__ = ["Counter", "Lease", "Lock", "SharedObject", "Store", "connect"]
