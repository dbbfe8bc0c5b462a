"""The store: shared objects, counters, leased locks and transactions, on any backend.

Everything here is backend-agnostic. A backend only keeps versioned records and counters
(``backends/base.py``); this module turns them into the public objects:

* :class:`SharedObject`: a proxy. Each method call loads the object's state, runs the
  method on a private instance, and writes the new state back with a compare-and-set on the
  version it read, all as one atomic step; a conflict re-runs the method on the newer state.
  So the method must not rely on effects outside the object (they could happen twice).
* A per-process **cache** of the last record seen: when it is still current, a call costs
  one round trip (the compare-and-set itself); when it is stale, the failed compare-and-set
  returns the current record and the retry costs one more.
* **Combining** (``combining.py``): concurrent calls of one process on one name share a trip.
* **Transactions** put a *hold* (owner, expiry) into the object's record; single calls that
  find a live hold by someone else wait, and the transaction's final write is itself a
  compare-and-set on the version that carries its hold, so a holder whose hold expired and
  was taken over cannot write (it gets :class:`LeaseExpiredError` instead).
* **Locks** are lease records: owner, expiry and a fencing token that grows by one on every
  grant and is never reset, so a protected resource can refuse a stale holder's token.

Stored layout of an object: the codec's encoding of ``{"c": "module:Class", "s": {attribute:
value, ...}, "h": [owner, expiry]}`` ("h" only while a transaction holds it). Deleting an
object writes an empty record (a tombstone) rather than removing it, so versions never
restart and a cached version can never match different contents.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .backends import open_backend, split_url
from .backends.base import UNKNOWN, Backend, Record
from .codecs import Codec, make_codec
from .combining import Call, Combiner
from .errors import (
    ClassMismatchError,
    ConfigurationError,
    CorruptStoreError,
    InvalidURLError,
    LeaseExpiredError,
    SerializationError,
    SharedStateError,
    StateLostError,
    StoreTimeoutError,
)

T = TypeVar("T")

OBJECT, COUNTER, LEASE = "o:", "c:", "l:"
STORE_PARAMETERS = frozenset({"prefix", "codec"})
DEFAULT_TIMEOUT = 10.0


class _Held(Exception):
    """Internal: the record is held by another owner until ``until`` (wall clock)."""

    def __init__(self, until: float, what: str) -> None:
        super().__init__(what)
        self.until = until
        self.what = what


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


def _detached(batch: list[Call]) -> bool:
    """True when nothing the callers hold can alias the instance the calls ran on."""
    for call in batch:
        if call.error is not None or type(call.result) not in _IMMUTABLE:
            return False
        _, args, kwargs = call.payload
        for value in args:
            if type(value) not in _IMMUTABLE:
                return False
        if kwargs and any(type(v) not in _IMMUTABLE for v in kwargs.values()):
            return False
    return True


def _same_class(stored: str, expected: str) -> bool:
    """Class paths match; a class run as ``__main__`` matches its importable twin, since
    ``python app.py`` and ``gunicorn app:app`` name the same class differently."""
    if stored == expected:
        return True
    stored_module, _, stored_name = stored.partition(":")
    expected_module, _, expected_name = expected.partition(":")
    return stored_name == expected_name and "__main__" in (stored_module, expected_module)


@functools.cache
def _slots_of(cls: type) -> tuple[str, ...]:
    names = []
    for klass in cls.__mro__:
        slots = getattr(klass, "__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__"):
                names.append(slot)
    return tuple(names)


def state_of(instance: object) -> dict[str, Any]:
    """The attributes that make up an instance's state (read, not copied)."""
    slots = _slots_of(type(instance))
    if not slots:
        return instance.__dict__
    state = dict(getattr(instance, "__dict__", ()))
    for slot in slots:
        if hasattr(instance, slot):
            state[slot] = getattr(instance, slot)
    return state


def restore(cls: type[T], state: dict[str, Any]) -> T:
    """An instance of ``cls`` holding ``state``, built without running ``__init__``."""
    instance = cls.__new__(cls)
    if hasattr(instance, "__dict__"):
        instance.__dict__.update(state)
    else:
        for name, value in state.items():
            object.__setattr__(instance, name, value)
    return instance


@dataclass
class ObjectSpec:
    """What ``store.object(name, cls, *args, **kwargs)`` declared."""

    name: str
    key: str
    cls: type
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    class_path: str = ""
    kinds: dict[str, str] = field(default_factory=dict)
    #: the proxy's callables, made once per method name
    methods: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.class_path = _class_path(self.cls)

    def create(self) -> Any:
        """The factory: runs only when no state is stored."""
        return self.cls(*self.args, **self.kwargs)

    def kind_of(self, attribute: str) -> str:
        """How the proxy serves ``attribute``: a stateful 'method', a 'static' one, 'async'
        (refused) or a 'read' of the state."""
        kind = self.kinds.get(attribute)
        if kind is None:
            found = inspect.getattr_static(self.cls, attribute, None)
            if isinstance(found, (staticmethod, classmethod)):
                kind = "static"
            elif inspect.iscoroutinefunction(found) or inspect.isasyncgenfunction(found):
                kind = "async"
            elif inspect.isfunction(found):
                kind = "method"
            else:
                kind = "read"
            self.kinds[attribute] = kind
        return kind


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
        _, options = split_url(url)
        store_options = {k: options.pop(k) for k in list(options) if k in STORE_PARAMETERS}
        self.url = url
        self.prefix = prefix if prefix is not None else store_options.get("prefix", "")
        self.codec: Codec = make_codec(codec or store_options.get("codec"), secret_key)
        try:
            self.timeout = float(timeout if timeout is not None else options.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise InvalidURLError(f"?timeout= must be a number of seconds, not {options.get('timeout')!r}") from None
        self.backend: Backend = open_backend(url, options)
        self._specs: dict[str, ObjectSpec] = {}
        self._cache: dict[str, Record] = {}
        #: keys other processes are writing: read before writing them (see ``_attempt``)
        self._stale: set[str] = set()
        #: key -> (record, the instance whose state it is), see ``_run_calls``
        self._instances: dict[str, tuple[Record, Any]] = {}
        self._forget_threads()
        _STORES.add(self)

    def _forget_threads(self) -> None:
        """Per-process coordination state; made anew in a forked child, where the locks of
        the parent's other threads would otherwise stay locked forever."""
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
        known = self._specs.get(name)
        if known is not None and not _same_class(known.class_path, spec.class_path):
            raise ClassMismatchError(
                f"shared object {name!r} is already declared with class {known.class_path}, "
                f"not {spec.class_path}"
            )
        self._specs[name] = spec
        return SharedObject(self, spec)  # type: ignore[return-value]

    def counter(self, name: str) -> Counter:
        """The shared integer counter ``name`` (0 until first changed)."""
        self._check_name(name)
        return Counter(self, name)

    def lock(self, name: str, ttl: float = 10.0, timeout: float | None = None) -> Lock:
        """A leased lock: held for at most ``ttl`` seconds unless extended; waits at most
        ``timeout`` seconds to get it (None: as long as it takes)."""
        self._check_name(name)
        if ttl <= 0:
            raise ValueError("a lock's ttl must be positive")
        return Lock(self, name, ttl, timeout)

    @contextmanager
    def transaction(self, target: str | Any, ttl: float = 30.0) -> Iterator[Any]:
        """Several calls on one object as one atomic step.

        Yields a private instance holding the current state; what the block leaves in it is
        written when the block ends without an exception (an exception writes nothing).
        Meanwhile other callers of the object wait; if the block outlives ``ttl``, another
        caller may take over and the block's write is refused with LeaseExpiredError.
        """
        spec = self._spec_for(target)
        owner = uuid.uuid4().hex
        taken: dict[str, Any] = {}

        def take(record: Record | None) -> bytes:
            instance = self._instance_from(spec, record, check_hold=True)
            taken["release"] = self._encode(spec, instance)
            taken["instance"] = instance
            return self._encode(spec, instance, hold=(owner, time.time() + ttl))

        held = self._atomically(spec.key, take, spec.name)
        assert held is not None
        try:
            yield taken["instance"]
            data = self._encode(spec, taken["instance"])
        except BaseException:
            try:  # release the hold; the block's own exception is the one to report
                self.backend.compare_and_set(spec.key, held.version, taken["release"])
            except SharedStateError:
                pass  # the hold then ends with its ttl
            self._cache.pop(spec.key, None)
            raise
        ok, current = self.backend.compare_and_set(spec.key, held.version, data)
        if not ok:
            self._cache.pop(spec.key, None)
            raise LeaseExpiredError(
                f"the transaction on {spec.name!r} outlived its ttl of {ttl:g} s and another "
                "caller took the object over; its changes were not applied"
            )
        if current is not None:
            self._cache[spec.key] = current

    def names(self) -> list[tuple[str, str]]:
        """(kind, name) of everything stored under this store's prefix: kind is 'object',
        'counter' or 'lock'."""
        kinds = {OBJECT: "object", COUNTER: "counter", LEASE: "lock"}
        found = []
        for key in self.backend.keys(self.prefix):
            marker, name = key[len(self.prefix) : len(self.prefix) + 2], key[len(self.prefix) + 2 :]
            if marker not in kinds:
                continue
            if marker == OBJECT:
                record = self.backend.load(key)
                if record is None or not record.data:
                    continue
            found.append((kinds[marker], name))
        return found

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The stored state of object ``name`` as ``{"class": ..., "state": {...}}``, read
        without its class (for ``flask sharedstate show``); None when nothing is stored."""
        record = self.backend.load(self.prefix + OBJECT + name)
        if record is None or not record.data:
            return None
        envelope = self._decode(record)
        return {"class": envelope.get("c"), "state": envelope.get("s"), "version": record.version}

    def delete(self, name: str) -> bool:
        """Forget object or counter ``name``: the object's factory runs again on next use."""
        key = self.prefix + OBJECT + name
        self._cache.pop(key, None)
        try:
            record = self.backend.update(key, lambda r: b"" if r is not None and r.data else None)
            removed_object = record is not None and not record.data
        except StateLostError:  # evicted state: deleting the name is how to start again
            removed_object = self.backend.delete(key)
        return self.backend.delete(self.prefix + COUNTER + name) or removed_object

    def close(self) -> None:
        """Close this process's connections; the store reopens them if used again."""
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sharedstate.Store {self.backend.describe()}>"

    # -- objects: the call path ----------------------------------------------------------
    def _call(self, spec: ObjectSpec, method: str | Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        combiner = self._combiners.get(spec.key)
        if combiner is None:
            combiner = self._combiner(spec.key, functools.partial(self._run_calls, spec))
        return combiner.submit((method, args, kwargs))

    def _combiner(
        self,
        key: str,
        execute: Callable[[list[Call]], None],
        execute_one: Callable[[Any], Any] | None = None,
    ) -> Combiner:
        combiner = self._combiners.get(key)
        if combiner is None:
            with self._combiners_lock:
                combiner = self._combiners.setdefault(key, Combiner(execute, execute_one))
        return combiner

    def _run_calls(self, spec: ObjectSpec, batch: list[Call]) -> None:
        """Applies a batch of method calls as one atomic step (see ``combining.py``).

        When the record is the one this process wrote last, the instance that produced it
        is used again instead of decoding the record, unless something outside may hold a
        reference into it: only calls whose arguments and result are immutable scalars
        leave the instance reusable. In the common case (that record is still cached) the
        batch goes straight to one compare-and-set.
        """
        key = spec.key
        reused = self._instances.pop(key, None)
        if reused is not None and self._cache.get(key) is reused[0] and key not in self._stale:
            record, instance = reused
            data, instance = self._apply_batch(spec, batch, instance, record.data)
            if data is not None:
                ok, current = self.backend.compare_and_set(key, record.version, data)
                if ok:
                    self._cache[key] = current
                    self._finish_batch(key, batch, current, instance)
                    return
                self._note_conflict(key)
                self._note_loaded(key, current)
            # else: a read-only batch on a cached state must be validated: the slow path

        final: list[Any] = [None]

        def change(record: Record | None) -> bytes | None:
            reused = self._instances.pop(key, None)
            if reused is not None and reused[0] is record:
                instance = reused[1]
            else:
                instance = self._instance_from(spec, record, check_hold=True)
            before = record.data if record is not None and record.data else None
            data, final[0] = self._apply_batch(spec, batch, instance, before)
            return data

        self._finish_batch(key, batch, self._atomically(key, change, spec.name), final[0])

    def _apply_batch(
        self, spec: ObjectSpec, batch: list[Call], instance: Any, before: bytes | None
    ) -> tuple[bytes | None, Any]:
        """Runs the calls in order on ``instance``; returns the new record data (None when
        nothing changed) and the instance holding it. A call that raises is undone."""
        last_good = before if before is not None else self._encode(spec, instance)
        for call in batch:
            method, args, kwargs = call.payload
            try:
                target = (
                    getattr(instance, method)
                    if isinstance(method, str)
                    else functools.partial(method, instance)
                )
                context = call.context
                if context is None:
                    call.result = target(*args, **kwargs)
                else:  # run for another thread: in that thread's context
                    call.result = context.run(target, *args, **kwargs)
                call.error = None
                last_good = self._encode(spec, instance)
            except Exception as exc:  # the call changes nothing; its error goes to its caller
                call.result, call.error = None, exc
                instance = restore(spec.cls, self._decode(last_good)["s"])
        return (None if last_good == before else last_good), instance

    def _finish_batch(self, key: str, batch: list[Call], record: Record | None, instance: Any) -> None:
        if record is not None and _detached(batch):
            self._instances[key] = (record, instance)
        for call in batch:
            call.done = True

    def _read(self, spec: ObjectSpec, attribute: str) -> Any:
        record = self.backend.load(spec.key)
        self._note_loaded(spec.key, record)
        instance = self._instance_from(spec, record, check_hold=False)
        return getattr(instance, attribute)

    def _instance_from(self, spec: ObjectSpec, record: Record | None, check_hold: bool) -> Any:
        if record is None or not record.data:
            return spec.create()
        envelope = self._decode(record)
        stored_class = envelope.get("c", "")
        if stored_class != spec.class_path and not _same_class(stored_class, spec.class_path):
            raise ClassMismatchError(
                f"shared object {spec.name!r} is stored with class {stored_class}, not "
                f"{spec.class_path}; use another name, or delete the stored one"
            )
        hold = envelope.get("h")
        if check_hold and hold and hold[1] > time.time():
            raise _Held(hold[1], f"object {spec.name!r} is held by a transaction")
        return restore(spec.cls, envelope["s"])

    def _encode(self, spec: ObjectSpec, instance: Any, hold: tuple[str, float] | None = None) -> bytes:
        try:
            return self.codec.dump_object(
                spec.class_path, state_of(instance), list(hold) if hold is not None else None
            )
        except SerializationError as exc:
            path = getattr(exc, "path", [])
            attribute = path[1] if len(path) > 1 and path[0] == "s" else None
            raise SerializationError(
                f"cannot store shared object {spec.name!r}: attribute {attribute!r}: {exc} "
                "(nothing was stored)",
                attribute=attribute,
            ) from None

    def _decode(self, data: bytes | Record) -> dict[str, Any]:
        raw = data.data if isinstance(data, Record) else data
        envelope = self.codec.loads(raw)
        if not isinstance(envelope, dict) or "s" not in envelope:
            raise CorruptStoreError("a stored object record has an unknown layout")
        return envelope

    # -- the atomic step, shared by objects, transactions and locks ----------------------
    def _atomically(
        self,
        key: str,
        change: Callable[[Record | None], bytes | None],
        what: str,
        timeout: float | None | object = UNKNOWN,
    ) -> Record | None:
        """Runs ``change`` as one atomic read-modify-write of ``key``; waits (up to the
        timeout) while a transaction or lease holds the record."""
        try:
            return self._attempt(key, change)
        except _Held:
            pass
        limit = self.timeout if timeout is UNKNOWN else timeout
        deadline = None if limit is None else time.monotonic() + float(limit)  # type: ignore[arg-type]
        pause = 0.001
        while True:
            try:
                return self._attempt(key, change)
            except _Held as held:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise StoreTimeoutError(
                        f"{held.what} and was not released within {limit:g} s"
                    ) from None
                wait = min(pause, max(held.until - time.time(), 0.0) + 0.0005)
                if deadline is not None:
                    wait = min(wait, max(deadline - now, 0.0))
                time.sleep(wait)
                pause = min(pause * 2, 0.05)

    def _attempt(self, key: str, change: Callable[[Record | None], bytes | None]) -> Record | None:
        """One try: the cached record's compare-and-set (one round trip), and on a conflict
        the backend's ``update`` starting from the record the conflict returned.

        Where reads are cheaper than a failed write (SQLite: a read takes no lock, a
        compare-and-set waits for the write lock only to fail), a key whose cache went stale
        is read first while other processes keep writing it (``_stale``); a read that finds
        the cached version still current switches the key back to cache-first.
        """
        backend = self.backend
        cached = self._cache.get(key)
        current: Any = UNKNOWN
        if cached is not None and key in self._stale:
            current = backend.load(key)
            if current is not None and current.version == cached.version:
                self._stale.discard(key)
            else:
                self._note_loaded(key, current)
                cached = None
        if cached is not None:
            try:
                data = change(cached)
            except Exception:  # a hold or a lease seen in the cache may be over (the cache
                # may even trail this process's own last write): judge on the store itself
                data, cached = None, None
        if cached is not None:
            if data is None:
                current = backend.load(key)
                if current is not None and current.version == cached.version:
                    return cached
            else:
                ok, current = backend.compare_and_set(key, cached.version, data)
                if ok:
                    self._cache[key] = current
                    return current
                self._note_conflict(key)
            self._note_loaded(key, current)
        record = backend.update(key, change, current)
        self._note_loaded(key, record)
        return record

    def _note_conflict(self, key: str) -> None:
        if self.backend.reads_are_cheap:
            self._stale.add(key)

    def _note_loaded(self, key: str, record: Record | None) -> None:
        """Keeps the cache; a record that vanished from an evicting store is lost state."""
        if record is not None:
            self._cache[key] = record
        elif key in self._cache:
            del self._cache[key]
            if self.backend.may_evict:
                name = key[len(self.prefix) + 2 :]
                raise StateLostError(
                    f"the state of {name!r} vanished from {self.backend.describe()} (evicted?); "
                    "it is not re-created, since that would repeat what it already handed out; "
                    "restore it or delete the name to start again"
                )

    # -- helpers -------------------------------------------------------------------------
    def _spec_for(self, target: str | Any) -> ObjectSpec:
        if isinstance(target, SharedObject):
            return object.__getattribute__(target, "_spec")
        spec = self._specs.get(target) if isinstance(target, str) else None
        if spec is None:
            raise ConfigurationError(
                f"store.transaction({target!r}) needs the name of an object declared with "
                "store.object(name, cls, ...) in this process, or the object itself"
            )
        return spec

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared name must be a non-empty string, not {name!r}")


class SharedObject(Generic[T]):
    """Stands in for the user's object: each method call is one atomic, linearizable step
    on the shared state; attribute reads return the latest stored state."""

    __slots__ = ("_store", "_spec")

    def __init__(self, store: Store, spec: ObjectSpec) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_spec", spec)

    def __getattr__(self, name: str) -> Any:
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        method = spec.methods.get(name)
        if method is not None:
            return method
        store: Store = object.__getattribute__(self, "_store")
        kind = spec.kind_of(name)
        if kind == "method":

            def shared_method(*args: Any, **kwargs: Any) -> Any:
                return store._call(spec, name, args, kwargs)

            shared_method.__name__ = name
            shared_method.__doc__ = getattr(spec.cls, name).__doc__
            spec.methods[name] = shared_method
            return shared_method
        if kind == "static":
            return getattr(spec.cls, name)
        if kind == "async":
            raise TypeError(
                f"{spec.cls.__qualname__}.{name} is async: an async method cannot run as one "
                "atomic step (it may suspend half-way); make it a plain method"
            )
        return store._read(spec, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._dunder("__setattr__", name, value)

    def __delattr__(self, name: str) -> None:
        self._dunder("__delattr__", name)

    def _dunder(self, method: str | Callable[..., Any], *args: Any) -> Any:
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        return object.__getattribute__(self, "_store")._call(spec, method, args, {})

    def __len__(self) -> int:
        return self._dunder("__len__")

    def __getitem__(self, key: Any) -> Any:
        return self._dunder("__getitem__", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._dunder("__setitem__", key, value)

    def __delitem__(self, key: Any) -> None:
        self._dunder("__delitem__", key)

    def __contains__(self, item: Any) -> bool:
        return self._dunder("__contains__", item)

    def __iter__(self) -> Iterator[Any]:
        """Iterates over a snapshot taken in one atomic step."""
        return iter(self._dunder(list))

    def __bool__(self) -> bool:
        cls = object.__getattribute__(self, "_spec").cls
        if hasattr(cls, "__bool__") or hasattr(cls, "__len__"):
            return bool(self._dunder("__bool__" if hasattr(cls, "__bool__") else "__len__"))
        return True

    def __repr__(self) -> str:
        spec: ObjectSpec = object.__getattribute__(self, "_spec")
        return f"<SharedObject {spec.name!r} of {spec.cls.__qualname__}>"


class Counter:
    """A shared integer; ``incr`` is the backend's native atomic add."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.key = store.prefix + COUNTER + name

    def incr(self, amount: int = 1) -> int:
        """Adds ``amount`` and returns the new value, atomically."""
        if type(amount) is not int:
            raise TypeError(f"a counter adds whole numbers, not {type(amount).__name__}")
        combiner = self.store._combiners.get(self.key)
        if combiner is None:
            combiner = self.store._combiner(self.key, self._run_incrs, self._run_one)
        return combiner.submit(amount)

    def _run_one(self, amount: int) -> int:
        return self.store.backend.counter_add(self.key, amount)

    def decr(self, amount: int = 1) -> int:
        """Subtracts ``amount`` and returns the new value, atomically."""
        return self.incr(-amount)

    def _run_incrs(self, batch: list[Call]) -> None:
        """One native add for the whole batch; each call gets the value it would have
        seen had the batch's calls run one after another, in queue order."""
        if len(batch) == 1:
            call = batch[0]
            call.result, call.done = self.store.backend.counter_add(self.key, call.payload), True
            return
        total = sum(call.payload for call in batch)
        running = self.store.backend.counter_add(self.key, total) - total
        for call in batch:
            running += call.payload
            call.result, call.done = running, True

    def get(self) -> int:
        """The current value."""
        return self.store.backend.counter_get(self.key)

    def set(self, value: int) -> None:
        """Sets the value."""
        if type(value) is not int:
            raise TypeError(f"a counter holds whole numbers, not {type(value).__name__}")
        self.store.backend.counter_set(self.key, value)

    def __int__(self) -> int:
        return self.get()

    def __repr__(self) -> str:
        return f"<Counter {self.name!r}>"


@dataclass
class Lease:
    """A granted lock. ``token`` is a fencing token: it strictly increases with every grant
    of this lock name, so a resource that remembers the largest token it has seen can refuse
    the write of a holder whose lease expired while it was paused."""

    lock: Lock
    token: int
    owner: str
    expires_at: float  # wall clock (time.time()), as the ttl is measured

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at

    def extend(self, ttl: float | None = None) -> None:
        """Pushes the expiry to ``ttl`` (default: the lock's ttl) seconds from now; raises
        LeaseExpiredError if the lease already ended."""
        self.expires_at = self.lock._extend(self, ttl if ttl is not None else self.lock.ttl)

    def release(self) -> None:
        """Gives the lock up; raises LeaseExpiredError if another holder has it by now."""
        self.lock._release(self)


class Lock:
    """A leased, fenced lock on a name; use ``with store.lock(name, ttl) as lease:``."""

    def __init__(self, store: Store, name: str, ttl: float, timeout: float | None) -> None:
        self.store = store
        self.name = name
        self.ttl = ttl
        self.timeout = timeout
        self.key = store.prefix + LEASE + name
        self._held = threading.local()  # the lease of ``with lock:``, per thread/greenlet

    def _state(self, record: Record | None) -> dict[str, Any]:
        if record is None or not record.data:
            return {"o": None, "t": 0, "e": 0.0}
        try:
            state = json.loads(record.data)
            if not isinstance(state, dict) or not {"o", "t", "e"} <= state.keys():
                raise ValueError("missing fields")
            return state
        except ValueError as exc:
            raise CorruptStoreError(f"the lease record of lock {self.name!r} is damaged: {exc}") from exc

    @staticmethod
    def _dump(owner: str | None, token: int, expires: float) -> bytes:
        return json.dumps({"o": owner, "t": token, "e": expires}).encode()

    def acquire(self, timeout: float | None | object = UNKNOWN) -> Lease:
        """Waits for the lock (up to ``timeout`` seconds) and returns the new lease."""
        owner = uuid.uuid4().hex
        ttl = self.ttl
        granted: dict[str, Any] = {}

        def take(record: Record | None) -> bytes:
            state = self._state(record)
            now = time.time()
            if state["o"] is not None and state["e"] > now:
                raise _Held(state["e"], f"lock {self.name!r} is held by another owner")
            granted["token"], granted["expires"] = state["t"] + 1, now + ttl
            return self._dump(owner, granted["token"], granted["expires"])

        limit = self.timeout if timeout is UNKNOWN else timeout
        self.store._atomically(self.key, take, self.name, timeout=limit)
        lease = Lease(self, granted["token"], owner, granted["expires"])
        self._held.lease = lease
        return lease

    def _check_mine(self, lease: Lease, state: dict[str, Any]) -> None:
        if state["o"] != lease.owner or state["t"] != lease.token:
            raise LeaseExpiredError(
                f"the lease on lock {self.name!r} (token {lease.token}) expired and the lock "
                f"was granted again (token {state['t']}); what it protected may have been "
                "changed by the next holder"
            )

    def _extend(self, lease: Lease, ttl: float) -> float:
        expires = time.time() + ttl

        def push(record: Record | None) -> bytes:
            state = self._state(record)
            self._check_mine(lease, state)
            if state["e"] <= time.time():
                raise LeaseExpiredError(f"the lease on lock {self.name!r} expired before it was extended")
            return self._dump(lease.owner, lease.token, expires)

        self.store._atomically(self.key, push, self.name)
        return expires

    def _release(self, lease: Lease) -> None:
        def drop(record: Record | None) -> bytes:
            state = self._state(record)
            self._check_mine(lease, state)
            return self._dump(None, lease.token, 0.0)

        self.store._atomically(self.key, drop, self.name)
        if getattr(self._held, "lease", None) is lease:
            self._held.lease = None

    def locked(self) -> bool:
        """Whether someone holds an unexpired lease right now."""
        state = self._state(self.store.backend.load(self.key))
        return state["o"] is not None and state["e"] > time.time()

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        lease = getattr(self._held, "lease", None)
        if lease is None:
            return
        try:
            lease.release()
        except LeaseExpiredError:
            if exc_type is None:
                raise


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
