"""Shared objects: how the calls on a proxy (``proxy.py``) become atomic steps.

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

import collections
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import GeneratorType
from typing import TYPE_CHECKING, Any

from . import bounded
from .backends.base import PartsWrite, Record
from .classrefs import main_module, same_class
from .combining import Call, batch_deadline
from .engine import Engine
from .errors import (
    ClassMismatchError,
    ConfigurationError,
    CorruptStoreError,
    LeaseExpiredError,
    SerializationError,
    SharedStateError,
)
from .frames import Frame, Split, new_id
from .parted import PART_FROM, PartedState, can_part, is_parted
from .parting import Parting
from .shapes import Shape, shape_of
from .steps import Change, Steps
from .tracked import plain

if TYPE_CHECKING:
    from .codecs import Codec


_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


def _detached(batch: list[Call], results: list[tuple[Any, BaseException | None]]) -> bool:
    """True when nothing the callers hold can alias the instance the calls ran on."""
    for call, (result, error) in zip(batch, results, strict=True):
        if error is not None or type(result) not in _IMMUTABLE or not _immutable_arguments(call.payload):
            return False
    return True


def _immutable_arguments(payload: tuple[Any, ...]) -> bool:
    """Whether a call's arguments are all immutable scalars (the caller keeps no handle
    into the instance through them)."""
    _, args, kwargs = payload
    for value in args:
        if type(value) not in _IMMUTABLE:
            return False
    return not kwargs or all(type(v) in _IMMUTABLE for v in kwargs.values())


@dataclass(eq=False)
class ObjectSpec:
    """What ``store.object(name, cls, *args, **kwargs)`` declared; the class is inspected
    then (``shapes.py``, once per class), so the call path only looks things up."""

    name: str
    key: str
    cls: type
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    shape: Shape = field(init=False)
    class_path: str = field(init=False)
    #: the proxy's callables, made once per method name
    methods: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: the attributes of an instance the factory made, learned once a call met one of them
    #: missing from the stored state (see :meth:`learn_defaults`); None: not learned
    defaults: dict[str, Any] | None = None
    _default_factory: Any = field(default=None, init=False)
    #: the size of a state past which a write checks whether an attribute is large
    #: enough to be stored apart (``parted.py``); doubled after each check that found none
    next_part_check: int = PART_FROM

    def __post_init__(self) -> None:
        self.shape = shape_of(self.cls)
        self.class_path = self.shape.path

    def create(self) -> Any:
        """The factory: runs only when no state is stored (and see ``learn_defaults``)."""
        instance = self.cls(*self.args, **self.kwargs)
        self.shape.prepare(instance)
        return instance

    def kind_of(self, attribute: str) -> str:
        """How the proxy serves ``attribute`` (see ``shapes._kind``)."""
        return self.shape.kind_of(attribute)

    def restore(self, state: Any, items: Any) -> Any:
        """An instance holding a stored state, with this declaration's defaults."""
        factory = None
        if self.shape.item_base is collections.defaultdict:
            factory = self._default_factory
            if factory is None:  # code, not state: learned from the factory, once
                factory = self._default_factory = self.create().default_factory
        return self.shape.restore(state, items, self.defaults, factory)

    def learn_defaults(self, error: BaseException, instance: Any) -> bool:
        """After ``error``: whether it was an attribute of ``instance`` missing from its
        stored state that a fresh instance has; if so the caller restores and runs again.

        This is how an attribute a new version of the class sets in ``__init__`` (with no
        class-level default) gets its value in a state stored by an older version: the
        factory runs once per process, only when a call would otherwise fail, and what it
        sets fills in what a stored state lacks from then on. A class with ``__setstate__``
        migrates its state itself."""
        if not isinstance(error, AttributeError) or self.defaults is not None:
            return False
        name = getattr(error, "name", None)
        if self.shape.custom_set or not name or getattr(error, "obj", None) is not instance:
            return False
        if name.startswith("__"):
            return False
        try:
            fresh = self.create()
        except Exception:  # the factory cannot run here: the call's own error stands
            self.defaults = {}
            return False
        self.defaults = self.shape.attributes(fresh)
        return name in self.defaults


class Objects:
    """The object calls of one store: batches, reads and transactions, over the engine."""

    def __init__(self, engine: Engine, codec: Codec, timeout: float) -> None:
        self.engine = engine
        self.codec = codec
        self.timeout = timeout
        #: key -> (record, the instance whose state it is), see ``run_batch``; bounded
        #: (``bounded.py``): an evicted entry costs one decode
        self._instances: dict[str, tuple[Record, Any]] = {}
        self._holding = threading.local()  # keys this thread holds in a transaction
        #: one entry per transaction open in this process (any thread); appends and pops
        #: are atomic under the GIL, so no lock (which a fork could copy held)
        self.transactions_open: list[None] = []
        #: the objects stored as a head and parts (``parted.py``)
        self.parting = Parting(self)

    def forget(self, key: str) -> None:
        """Drops the reusable instance of ``key`` (see ``bounded.py``)."""
        self._instances.pop(key, None)
        self.parting.states.pop(key, None)

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

    def run_one(self, spec: ObjectSpec, payload: tuple[Any, ...], deadline: float) -> Any:
        """A lone call (no other thread of this process waiting on the name): the batch
        path without its bookkeeping, since this is every uncontended call's cost."""
        record, outcome = self.engine.run(spec.key, self.one_change(spec, payload), deadline)
        return self.finish_one(spec, payload, record, outcome)

    def one_change(self, spec: ObjectSpec, payload: tuple[Any, ...]) -> Change:
        """The engine's change for one call run in the caller's own context (shared by
        the sync and the async drivers); :meth:`finish_one` takes its outcome."""
        entry = ((*payload, None),)
        parted: list[Any] | None = None  # made for a parted record only

        def change(record: Record | None, frame: Frame) -> tuple[bytes | Split | None, Any]:
            nonlocal parted
            payload = frame.payload
            if payload and payload[0] == 1 and is_parted(payload):  # (an int compare first: every call's path)
                if parted is None:
                    parted = []
                return self._parted_change(spec, entry, record, frame, parted)
            instance = self._instance_for(spec, record, frame)
            return self._apply_calls(spec, entry, instance, payload or None)

        return change

    def finish_one(self, spec: ObjectSpec, payload: tuple[Any, ...], record: Record | None, outcome: Any) -> Any:
        """The result of a lone call whose change (:meth:`one_change`) was applied."""
        instance, ((result, error),) = outcome
        if type(instance) is PartedState:
            self.parting.commit(spec, instance, record)
        elif record is not None and type(result) in _IMMUTABLE and _immutable_arguments(payload):
            self._keep(spec.key, record, instance)
        if error is not None:
            raise error
        return result

    def _keep(self, key: str, record: Record, instance: Any) -> None:
        """Keeps ``instance`` (the state of ``record``) for the next call to reuse."""
        instances = self._instances
        instances[key] = (record, instance)
        if len(instances) > bounded.KEEP_NAMES:
            bounded.trim(instances)

    def batch_change(self, spec: ObjectSpec, batch: list[Call]) -> Change:
        """The engine's change for ``batch`` (shared by the sync and the async drivers)."""

        parted: list[Any] = []

        def change(record: Record | None, frame: Frame) -> tuple[bytes | Split | None, Any]:
            if is_parted(frame.payload):
                entries = [(*call.payload, call.context) for call in batch]
                return self._parted_change(spec, entries, record, frame, parted)
            instance = self._instance_for(spec, record, frame)
            return self._apply_batch(spec, batch, instance, frame.payload or None)

        return change

    def _parted_change(
        self, spec: ObjectSpec, entries: Sequence[tuple[Any, ...]], record: Record | None,
        frame: Frame, parted: list[Any],
    ) -> tuple[bytes | Split | None, Any]:
        """The change on a parted record; ``parted`` holds the state this step took (the
        engine may run the change again: the state's own undo puts it back first) and the
        step's calls that raised (see ``Parting.run_calls``)."""
        if not parted:
            parted.extend((self.parting.take(spec.key), {}))
        assert record is not None
        state = parted[0] = self.parting.state_for(spec, record, frame.payload, parted[0])
        write, results = self.parting.run_calls(spec, state, entries, parted[1])
        return write, (state, results)

    def _instance_for(self, spec: ObjectSpec, record: Record | None, frame: Frame) -> Any:
        """The instance a change runs on: the one kept from this process's own last write
        when ``record`` is that write's (taken: a change may mutate it), else a decoded one."""
        reused = self._instances.pop(spec.key, None)
        if reused is not None and reused[0] is record:
            return reused[1]
        return self.instance_from(spec, frame)

    def finish_batch(self, spec: ObjectSpec, batch: list[Call], record: Record | None, outcome: Any) -> None:
        """Hands each call of an applied batch its result (``outcome``: the change's)."""
        instance, results = outcome
        if type(instance) is PartedState:
            self.parting.commit(spec, instance, record)
        elif record is not None and _detached(batch, results):
            self._keep(spec.key, record, instance)
        for call, (result, error) in zip(batch, results, strict=True):
            call.finish(result, error)

    def _apply_batch(
        self, spec: ObjectSpec, batch: list[Call], instance: Any, before: bytes | None
    ) -> tuple[bytes | Split | None, tuple[Any, list[tuple[Any, BaseException | None]]]]:
        """Runs the calls in order on ``instance``; returns the new payload (None when
        nothing changed), the instance holding it, and each call's result or error. A call
        that raises is undone."""
        return self._apply_calls(spec, [(*call.payload, call.context) for call in batch], instance, before)

    def _apply_calls(
        self, spec: ObjectSpec, calls: Sequence[tuple[Any, ...]], instance: Any, before: bytes | None
    ) -> tuple[bytes | Split | None, tuple[Any, list[tuple[Any, BaseException | None]]]]:
        """:meth:`_apply_batch` on ``(method, args, kwargs, context)`` entries; a context of
        None: the call runs in this thread's own."""
        last_good = before if before is not None else self.encode(spec, instance)
        results: list[tuple[Any, BaseException | None]] = []
        for method, args, kwargs, context in calls:
            for first_try in (True, False):
                try:
                    target = (
                        getattr(instance, method)
                        if isinstance(method, str)
                        else functools.partial(method, instance)
                    )
                    if context is None:
                        result = target(*args, **kwargs)
                    else:  # run for another thread: in that thread's context
                        result = context.run(target, *args, **kwargs)
                    if type(result) is GeneratorType:  # its body changes state: run it now
                        result = list(result) if context is None else context.run(list, result)
                    last_good = self.encode(spec, instance)
                    results.append((result, None))
                    break
                except Exception as exc:  # the call changes nothing; its error goes to its caller
                    learned = first_try and spec.learn_defaults(exc, instance)
                    instance = self.restore(spec, last_good)
                    if learned:
                        continue  # an attribute the stored state lacked has its default now
                    results.append((None, exc))
                    break
        if last_good == before:
            return None, (instance, results)
        if len(last_good) > spec.next_part_check and can_part(self, spec):  # large: parted?
            written, state = self.parting.layout_write(spec, instance, None)
            if type(written) is Split:
                # kept only if the callers hold no handle into it (see ``_detached``)
                state.aliased = any(e is not None or type(r) not in _IMMUTABLE for r, e in results) or not all(
                    _immutable_arguments(entry[:3]) for entry in calls
                )
                return written, (state, results)
            spec.next_part_check = 2 * len(last_good)  # no attribute is large yet
        return last_good, (instance, results)

    def read(self, spec: ObjectSpec, attribute: str) -> Any:
        """An attribute of the latest stored state (a fresh copy)."""
        return self.engine.drive(self.read_steps(spec, attribute, time.monotonic() + self.timeout))

    def read_steps(self, spec: ObjectSpec, attribute: str, deadline: float) -> Steps:
        """:meth:`read` as engine steps (shared by the sync and the async drivers): a
        small attribute of a parted object is read from its head alone."""
        engine, key = self.engine, spec.key
        record = yield from engine.load_steps(key, deadline)
        frame = engine.frame_of(key, record)
        if record is None or not is_parted(frame.payload):
            return self.attribute_of(spec, frame, attribute)
        head = self.parting.head_of(spec, frame.payload)
        small = self.parting.small_of(spec, head.small_bytes)
        if attribute in small and inspect.getattr_static(spec.cls, attribute, None) is None:
            return small[attribute]  # an attribute of the instance, no descriptor of the class
        record = yield from engine.load_steps(key, deadline, 0)
        frame = engine.frame_of(key, record)
        if record is None or not is_parted(frame.payload) or record.parts is None:
            return self.attribute_of(spec, frame, attribute)
        state = self.parting.state_for(spec, record, frame.payload, None)
        return plain(getattr(state.instance, attribute))

    def attribute_of(self, spec: ObjectSpec, frame: Frame, attribute: str) -> Any:
        """``attribute`` of the state in ``frame`` (shared by the sync and async reads)."""
        instance = self.instance_from(spec, frame)
        try:
            return getattr(instance, attribute)
        except AttributeError as exc:
            if not spec.learn_defaults(exc, instance):
                raise
        return getattr(self.instance_from(spec, frame), attribute)

    def check_not_holding(self, spec: ObjectSpec) -> None:
        """A thread inside its own transaction on ``spec`` must not wait for itself."""
        if not self.transactions_open:  # none open in this process: every call's path
            return
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
        self.transactions_open.append(None)
        holding[key] = started + ttl
        self._instances.pop(key, None)
        self.parting.states.pop(key, None)
        try:
            yield instance
            data = self.transaction_write(spec, instance)
        except BaseException:
            self._leave(holding, key)
            try:  # release the hold; the block's own exception is the one to report
                self._finish(spec, owner, None, ttl)
            except SharedStateError:
                pass  # the hold then ends with its ttl
            raise
        self._leave(holding, key)
        self._finish(spec, owner, data, ttl)

    def _leave(self, holding: dict[str, float], key: str) -> None:
        holding.pop(key, None)
        self.transactions_open.pop()

    def take_change(self, spec: ObjectSpec) -> Change:
        """The change that opens a transaction: the state stays, the outcome is an instance."""

        def take(record: Record | None, frame: Frame) -> tuple[bytes, Any]:
            if record is not None and is_parted(frame.payload):  # every part: the block may read any
                state = self.parting.state_for(spec, record, frame.payload, None)
                return frame.payload, state.instance
            instance = self.instance_from(spec, frame)
            return frame.payload or self.encode(spec, instance), instance

        return take

    def transaction_write(self, spec: ObjectSpec, instance: Any) -> bytes | Split:
        """What a transaction's end writes: the whole state, parted when it is large."""
        data = self.encode(spec, instance)
        if len(data) > PART_FROM and can_part(self, spec):
            written, _ = self.parting.layout_write(spec, instance, None)
            return written
        return data

    def release_change(self, spec: ObjectSpec, owner: str, data: bytes | Split | None, ttl: float) -> Change:
        """The change that ends a transaction: its state (``data``; None: unchanged) is
        written and its hold dropped, unless the hold was taken over meanwhile."""

        def release(record: Record | None, frame: Frame) -> tuple[bytes | Split, Any]:
            if frame.hold is None or frame.hold[0] != owner:
                raise LeaseExpiredError(
                    f"the transaction on {spec.name!r} outlived its ttl of {ttl:g} s and another "
                    "caller took the object over; its changes were not applied"
                )
            if data is None:
                return frame.payload, None
            if type(data) is bytes and is_parted(frame.payload):  # no longer parted: parts go
                return Split(data, PartsWrite({}, reset=True)), None
            return data, None

        return release

    def _finish(self, spec: ObjectSpec, owner: str, data: bytes | Split | None, ttl: float) -> None:
        """Writes the transaction's state (``data``; None: unchanged) and drops its hold."""
        deadline = time.monotonic() + self.timeout
        self.engine.run(spec.key, self.release_change(spec, owner, data, ttl), deadline, owner=owner, wait=False)

    # -- encoding ------------------------------------------------------------------------
    def instance_from(self, spec: ObjectSpec, frame: Frame) -> Any:
        if not frame.payload:
            return spec.create()
        envelope = self._decode_for(spec, frame.payload)
        stored_class = envelope.get("c", "")
        if not same_class(stored_class, spec.class_path):
            raise ClassMismatchError(
                f"shared object {spec.name!r} is stored with class {stored_class}, not "
                f"{spec.class_path}; use another name, or delete the stored one"
            )
        return spec.restore(envelope["s"], envelope.get("i"))

    def restore(self, spec: ObjectSpec, payload: bytes) -> Any:
        """A fresh instance from an encoded state (of this process's own making)."""
        envelope = self._decode_for(spec, payload)
        return spec.restore(envelope["s"], envelope.get("i"))

    def _decode_for(self, spec: ObjectSpec, payload: bytes) -> dict[str, Any]:
        """Decodes a state of ``spec``'s class, finding classes a script stored as
        ``__main__``'s in the shared class's own module (see ``classrefs.py``)."""
        previous = main_module(spec.cls.__module__)
        try:
            return self.decode(payload, spec.name)
        finally:
            main_module(previous)

    def encode(self, spec: ObjectSpec, instance: Any) -> bytes:
        try:
            state, items = spec.shape.get_state(instance)
            return self.codec.dump_object(spec.class_path, state, None, items)
        except SerializationError as exc:
            path = getattr(exc, "path", [])
            attribute = path[1] if len(path) > 1 and path[0] == "s" else None
            where = f"attribute {attribute!r}"
            if len(path) > 1 and path[0] == "i":
                where = f"item {path[1]!r}"
            raise SerializationError(
                f"cannot store shared object {spec.name!r}: {where}: {exc} (nothing was stored)",
                attribute=attribute,
            ) from None

    def decode(self, payload: bytes, name: str, tool: bool = False) -> dict[str, Any]:
        """The stored envelope; ``tool``: read without the classes it names (``inspect``)."""
        envelope = self.codec.loads(payload, tool)
        if not isinstance(envelope, dict) or "s" not in envelope:
            raise CorruptStoreError(
                f"the stored record of shared object {name!r} in "
                f"{self.engine.backend.describe()} has an unknown layout"
            )
        return envelope
