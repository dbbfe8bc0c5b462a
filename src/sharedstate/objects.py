"""Shared objects: the proxy a user holds, and how its calls become atomic steps.

A call on a :class:`SharedObject` is queued on the name's combiner (``combining.py``); the
combiner hands a batch of calls to :meth:`Objects.run_batch`, which asks the engine
(``engine.py``) for one atomic step: from the stored state, run each method on a private
instance, and write the new state. The engine may run that change more than once (after a
conflict with another process), so a method must change only the object; effects outside
it (an e-mail) belong after the call.

Stored payload of an object: the codec's encoding of ``{"c": "module:Class", "s":
{attribute: value, ...}}``. Attribute reads decode a fresh instance, so what they return is
a copy: changing it changes nothing stored.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .backends.base import Record
from .combining import Call, batch_deadline
from .engine import Change, Engine
from .errors import (
    ClassMismatchError,
    ConfigurationError,
    CorruptStoreError,
    LeaseExpiredError,
    SerializationError,
    SharedStateError,
)
from .frames import Frame, new_id

if TYPE_CHECKING:
    from .codecs import Codec
    from .store import Store

T = TypeVar("T")

_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def same_class(stored: str, expected: str) -> bool:
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


def state_of(instance: Any) -> dict[str, Any]:
    """The attributes that make up an instance's state (read, not copied)."""
    slots = _slots_of(type(instance))  # type: ignore[arg-type]
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


def _detached(batch: list[Call], results: list[tuple[Any, BaseException | None]]) -> bool:
    """True when nothing the callers hold can alias the instance the calls ran on."""
    for call, (result, error) in zip(batch, results, strict=True):
        if error is not None or type(result) not in _IMMUTABLE:
            return False
        _, args, kwargs = call.payload
        for value in args:
            if type(value) not in _IMMUTABLE:
                return False
        if kwargs and any(type(v) not in _IMMUTABLE for v in kwargs.values()):
            return False
    return True


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
        self.class_path = class_path(self.cls)

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


class Objects:
    """The object calls of one store: batches, reads and transactions, over the engine."""

    def __init__(self, engine: Engine, codec: Codec, timeout: float) -> None:
        self.engine = engine
        self.codec = codec
        self.timeout = timeout
        #: key -> (record, the instance whose state it is), see ``run_batch``
        self._instances: dict[str, tuple[Record, Any]] = {}
        self._holding = threading.local()  # keys this thread holds in a transaction

    # -- calls ---------------------------------------------------------------------------
    def run_batch(self, spec: ObjectSpec, batch: list[Call]) -> None:
        """Applies a batch of method calls as one atomic step (see ``combining.py``).

        When the record is the one this process wrote last, the instance that produced it
        is used again instead of decoding the record, unless something outside may hold a
        reference into it: only calls whose arguments and result are immutable scalars
        leave the instance reusable.
        """
        record, outcome = self.engine.run(spec.key, self.batch_change(spec, batch), batch_deadline(batch))
        self.finish_batch(spec, batch, record, outcome)

    def batch_change(self, spec: ObjectSpec, batch: list[Call]) -> Change:
        """The engine's change for ``batch`` (shared by the sync and the async drivers)."""
        key = spec.key

        def change(record: Record | None, frame: Frame) -> tuple[bytes | None, Any]:
            reused = self._instances.pop(key, None)
            if reused is not None and reused[0] is record:
                instance = reused[1]
            else:
                instance = self.instance_from(spec, frame)
            before = frame.payload or None
            return self._apply_batch(spec, batch, instance, before)

        return change

    def finish_batch(self, spec: ObjectSpec, batch: list[Call], record: Record | None, outcome: Any) -> None:
        """Hands each call of an applied batch its result (``outcome``: the change's)."""
        instance, results = outcome
        if record is not None and _detached(batch, results):
            self._instances[spec.key] = (record, instance)
        for call, (result, error) in zip(batch, results, strict=True):
            call.finish(result, error)

    def _apply_batch(
        self, spec: ObjectSpec, batch: list[Call], instance: Any, before: bytes | None
    ) -> tuple[bytes | None, tuple[Any, list[tuple[Any, BaseException | None]]]]:
        """Runs the calls in order on ``instance``; returns the new payload (None when
        nothing changed), the instance holding it, and each call's result or error. A call
        that raises is undone."""
        last_good = before if before is not None else self.encode(spec, instance)
        results: list[tuple[Any, BaseException | None]] = []
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
                    result = target(*args, **kwargs)
                else:  # run for another thread: in that thread's context
                    result = context.run(target, *args, **kwargs)
                last_good = self.encode(spec, instance)
                results.append((result, None))
            except Exception as exc:  # the call changes nothing; its error goes to its caller
                results.append((None, exc))
                instance = restore(spec.cls, self.decode(last_good, spec.name)["s"])
        return (None if last_good == before else last_good), (instance, results)

    def read(self, spec: ObjectSpec, attribute: str) -> Any:
        """An attribute of the latest stored state (a fresh copy)."""
        record = self.engine.load(spec.key, time.monotonic() + self.timeout)
        instance = self.instance_from(spec, self.engine.frame_of(spec.key, record))
        return getattr(instance, attribute)

    def check_not_holding(self, spec: ObjectSpec) -> None:
        """A thread inside its own transaction on ``spec`` must not wait for itself."""
        ends = getattr(self._holding, "keys", {}).get(spec.key)
        if ends is not None and time.monotonic() < ends:
            raise ConfigurationError(
                f"this thread is inside store.transaction({spec.name!r}): a call on the shared "
                "object would wait for that transaction's own hold; call the methods on the "
                "instance the transaction gave you instead"
            )

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def transaction(self, spec: ObjectSpec, ttl: float) -> Iterator[Any]:
        """See :meth:`Store.transaction`."""
        self.check_not_holding(spec)
        owner = new_id()
        key = spec.key
        started = time.monotonic()
        _, instance = self.engine.run(
            key, self.take_change(spec), time.monotonic() + self.timeout, owner=owner, hold=(owner, ttl)
        )
        holding = self._holding.__dict__.setdefault("keys", {})
        holding[key] = started + ttl
        self._instances.pop(key, None)
        try:
            yield instance
            data = self.encode(spec, instance)
        except BaseException:
            holding.pop(key, None)
            try:  # release the hold; the block's own exception is the one to report
                self._finish(spec, owner, None, ttl)
            except SharedStateError:
                pass  # the hold then ends with its ttl
            raise
        holding.pop(key, None)
        self._finish(spec, owner, data, ttl)

    def take_change(self, spec: ObjectSpec) -> Change:
        """The change that opens a transaction: the state stays, the outcome is an instance."""

        def take(record: Record | None, frame: Frame) -> tuple[bytes, Any]:
            instance = self.instance_from(spec, frame)
            return frame.payload or self.encode(spec, instance), instance

        return take

    def release_change(self, spec: ObjectSpec, owner: str, data: bytes | None, ttl: float) -> Change:
        """The change that ends a transaction: its state (``data``; None: unchanged) is
        written and its hold dropped, unless the hold was taken over meanwhile."""

        def release(record: Record | None, frame: Frame) -> tuple[bytes, Any]:
            if frame.hold is None or frame.hold[0] != owner:
                raise LeaseExpiredError(
                    f"the transaction on {spec.name!r} outlived its ttl of {ttl:g} s and another "
                    "caller took the object over; its changes were not applied"
                )
            return (data if data is not None else frame.payload), None

        return release

    def _finish(self, spec: ObjectSpec, owner: str, data: bytes | None, ttl: float) -> None:
        """Writes the transaction's state (``data``; None: unchanged) and drops its hold."""
        deadline = time.monotonic() + self.timeout
        self.engine.run(spec.key, self.release_change(spec, owner, data, ttl), deadline, owner=owner, wait=False)

    # -- encoding ------------------------------------------------------------------------
    def instance_from(self, spec: ObjectSpec, frame: Frame) -> Any:
        if not frame.payload:
            return spec.create()
        envelope = self.decode(frame.payload, spec.name)
        stored_class = envelope.get("c", "")
        if not same_class(stored_class, spec.class_path):
            raise ClassMismatchError(
                f"shared object {spec.name!r} is stored with class {stored_class}, not "
                f"{spec.class_path}; use another name, or delete the stored one"
            )
        return restore(spec.cls, envelope["s"])

    def encode(self, spec: ObjectSpec, instance: Any) -> bytes:
        try:
            return self.codec.dump_object(spec.class_path, state_of(instance), None)
        except SerializationError as exc:
            path = getattr(exc, "path", [])
            attribute = path[1] if len(path) > 1 and path[0] == "s" else None
            raise SerializationError(
                f"cannot store shared object {spec.name!r}: attribute {attribute!r}: {exc} "
                "(nothing was stored)",
                attribute=attribute,
            ) from None

    def decode(self, payload: bytes, name: str) -> dict[str, Any]:
        envelope = self.codec.loads(payload)
        if not isinstance(envelope, dict) or "s" not in envelope:
            raise CorruptStoreError(
                f"the stored record of shared object {name!r} in "
                f"{self.engine.backend.describe()} has an unknown layout"
            )
        return envelope


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
        return store._objects.read(spec, name)

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
