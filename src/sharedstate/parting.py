"""The parted-object calls of a store: building a parted state from its head and parts,
running calls on it with undo, and the write a call makes (the layout and the design are in
``parted.py``)."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Sequence
from types import GeneratorType
from typing import TYPE_CHECKING, Any

from . import bounded
from .backends.base import KEEP_REMOVED, PartsWrite, Record
from .classrefs import main_module, same_class
from .errors import ClassMismatchError, CorruptStoreError, SerializationError
from .frames import Split
from .parted import (
    COMPACT_FROM,
    PART_FROM,
    SEP,
    Head,
    PartedState,
    entry_part,
    explodable,
    is_parted,
    key_of_part,
    stamped,
)
from .steps import NeedParts
from .tracked import TrackedDict, immutable, plain

if TYPE_CHECKING:
    from .objects import Objects, ObjectSpec

#: each call's result and error, in the order the calls ran
Results = list[tuple[Any, BaseException | None]]


class Parting:
    """The parted-object calls of one store (``objects.py`` hands them over)."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.codec = objects.codec
        #: key -> the state this process keeps; taken by the step that uses it, put back
        #: when that step's write applied (a step that fails drops it: the next one loads)
        self.states: dict[str, PartedState] = {}

    # -- encoding ------------------------------------------------------------------------
    def _dump(self, spec: ObjectSpec, name: str, value: Any) -> bytes:
        try:
            return self.codec.dumps(value)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot store shared object {spec.name!r}: attribute {name!r}: {exc} (nothing was stored)",
                attribute=name,
            ) from None

    def _load(self, spec: ObjectSpec, data: bytes, tool: bool = False) -> Any:
        previous = main_module(spec.cls.__module__) if spec is not None else None
        try:
            return self.codec.loads(data, tool)
        finally:
            if spec is not None:
                main_module(previous)

    def head_of(self, spec: ObjectSpec, payload: bytes) -> Head:
        head = Head(self.codec, payload)
        if not same_class(head.class_path, spec.class_path):
            raise ClassMismatchError(
                f"shared object {spec.name!r} is stored with class {head.class_path}, not "
                f"{spec.class_path}; use another name, or delete the stored one"
            )
        return head

    def small_of(self, spec: ObjectSpec, small: bytes) -> dict[str, Any]:
        found = self._load(spec, small) if small else {}
        if not isinstance(found, dict):
            raise CorruptStoreError(f"the stored head of shared object {spec.name!r} has an unknown layout")
        return found

    # -- building the instance from the store --------------------------------------------
    def state_for(self, spec: ObjectSpec, record: Record, payload: bytes, taken: PartedState | None) -> PartedState:
        """The state of ``record`` (a parted head): ``taken`` brought up to date with the
        record's parts, or built anew from all of them; raises ``NeedParts`` when the
        record does not carry the parts needed."""
        if taken is not None:
            self.undo(spec, taken)
            if taken.broken:
                taken = None
            elif taken.record is record:
                return taken
        parts = record.parts
        if parts is None:
            raise NeedParts(taken.record.version if taken is not None and taken.record is not None else 0)
        head = self.head_of(spec, payload)
        if parts.since == 0:
            return self._build(spec, record, head)
        if (
            taken is None
            or taken.record is None
            or parts.since != taken.record.version
            or head.generation != taken.generation
            or record.version - parts.since >= KEEP_REMOVED
        ):
            raise NeedParts(0)
        self._apply(spec, taken, record, head)
        return taken

    def state_dict(
        self, spec: Any, record: Record, head: Head, tool: bool = False
    ) -> tuple[dict[str, Any], dict[str, bytes], dict[str, dict[Any, int]]]:
        """The attributes stored in a parted record read with every part (``since=0``),
        its whole parts as stored, and the keys of each dict that have overrides."""
        assert record.parts is not None
        state = dict(self._load(spec, head.small_bytes, tool) if head.small_bytes else {})
        wholes: dict[str, bytes] = {}
        exploded: dict[str, TrackedDict] = {}
        overrides = []
        for part, data in record.parts.changed.items():
            kind = part[0]
            if kind == "a":
                wholes[part[1:]] = data
                state[part[1:]] = self._load(spec, data, tool)
            elif kind == "b":
                exploded[part[1:]] = TrackedDict(self._load(spec, data, tool))
            elif kind == "e":
                overrides.append((part, data))
        missing = (set(head.wholes) - set(wholes)) | (set(head.exploded) - set(exploded))
        if missing:
            raise CorruptStoreError(f"the stored parts of an object lack attribute(s) {sorted(missing)}")
        overridden: dict[str, dict[Any, int]] = {name: {} for name in exploded}
        self._override(spec, exploded, overridden, overrides, tool)
        state.update(exploded)
        return state, wholes, overridden

    def _override(
        self, spec: Any, dicts: dict[str, Any], overridden: dict[str, dict[Any, int]],
        overrides: list[tuple[str, bytes]], tool: bool = False,
    ) -> None:
        """Applies override parts to their dicts: in place, or put in anew at the end in
        the order their writes put them in (their stamps)."""
        moved = []
        for part, data in overrides:
            name, _, code = part[1:].partition(SEP)
            target = dicts.get(name)
            if target is None:
                continue
            key = key_of_part(code)
            known = overridden[name].get(key)
            if not data:
                target.unload(key)
                overridden[name][key] = -1
                continue
            stamp, value = stamped(data)
            overridden[name][key] = stamp
            if stamp == 0 or (stamp == known and key in target):
                target.load(key, self._load(spec, value, tool))
            else:
                moved.append((stamp, name, key, value))
        for _stamp, name, key, value in sorted(moved, key=lambda item: item[0]):
            dicts[name].load(key, self._load(spec, value, tool), to_end=True)

    def inspect(self, payload: bytes, record: Record) -> dict[str, Any] | None:
        """``Store.inspect`` of a parted record read with every part: read without its
        classes (see ``classrefs.Stored``)."""
        if not is_parted(payload):
            return None
        head = Head(self.codec, payload, tool=True)
        state, _, _ = self.state_dict(None, record, head, tool=True)
        shown = {name: plain(value) for name, value in state.items()}
        return {"class": head.class_path, "state": shown, "version": record.version}

    def _build(self, spec: ObjectSpec, record: Record, head: Head) -> PartedState:
        state, wholes, overridden = self.state_dict(spec, record, head)
        instance = spec.restore(state, None)
        built = PartedState(record, instance, head.small_bytes, wholes, frozenset(head.exploded), head.generation)
        built.overridden = overridden
        return built

    def _apply(self, spec: ObjectSpec, state: PartedState, record: Record, head: Head) -> None:
        """Brings ``state`` (same layout) up to ``record`` with the parts written since."""
        assert record.parts is not None
        attributes = state.instance.__dict__
        overrides = []
        for part, data in record.parts.changed.items():
            if part[0] == "a":
                state.wholes[part[1:]] = data
                attributes[part[1:]] = self._load(spec, data)
            elif part[0] == "e":
                overrides.append((part, data))
            else:  # a base is written only with a new layout (another generation)
                raise CorruptStoreError(f"shared object {spec.name!r}: its dict {part[1:]!r} was rewritten in place")
        if overrides:
            dicts = {name: attributes[name] for name in state.exploded}
            self._override(spec, dicts, state.overridden, overrides)
        for part in record.parts.removed:
            if part[0] == "e":
                name, _, code = part[1:].partition(SEP)
                attributes[name].unload(key_of_part(code))
        if head.small_bytes != state.small:
            fresh = self._small_attributes(spec, state, head.small_bytes)
            for name in [n for n in attributes if n not in state.wholes and n not in state.exploded]:
                del attributes[name]
            attributes.update(fresh)
            state.small = head.small_bytes
        state.record = record

    def _small_attributes(self, spec: ObjectSpec, state: PartedState, small: bytes) -> dict[str, Any]:
        """The small attributes stored, with the class's defaults for those missing."""
        fresh = spec.restore(self.small_of(spec, small), None).__dict__
        return {n: v for n, v in fresh.items() if n not in state.wholes and n not in state.exploded}

    # -- running calls -------------------------------------------------------------------
    def take(self, key: str) -> PartedState | None:
        return self.states.pop(key, None)

    def run_calls(
        self, spec: ObjectSpec, state: PartedState, calls: Sequence[tuple[Any, ...]],
        failures: dict[int, tuple[int, BaseException]],
    ) -> tuple[Split | bytes | None, Results]:
        """Runs ``(method, args, kwargs, context)`` calls on the state's instance; returns
        the write (None: nothing changed) and each call's result or error. A call that
        raises is undone (the others run again without it). ``failures``: the calls of
        this step that raised, with the version they raised on (kept by the step: when an
        undo sends it to read the object anew, a call that raised on that very version is
        not run again)."""
        assert state.record is not None
        version = state.record.version
        failed = {index: exc for index, (seen, exc) in failures.items() if seen == version}
        learned = False
        while True:
            self.undo(spec, state)
            if state.broken:
                raise NeedParts(0)  # read anew (the step comes back with every part)
            state.snapshot = dict(state.instance.__dict__)
            state.aliased = False
            results: Results = []
            for index, entry in enumerate(calls):
                if index in failed:
                    results.append((None, failed[index]))
                    continue
                try:
                    result, aliased = _run_call(state.instance, entry)
                    results.append((result, None))
                    state.aliased = state.aliased or aliased
                except Exception as exc:
                    if not learned and spec.learn_defaults(exc, state.instance):
                        learned = True  # a default the stored state lacked: from the start
                        self.undo(spec, state)
                        for name, value in (spec.defaults or {}).items():
                            state.instance.__dict__.setdefault(name, copy.deepcopy(value))
                    else:
                        failed[index] = exc
                        failures[index] = (version, exc)
                    break
            else:
                return self._write_of(spec, state), results

    def undo(self, spec: ObjectSpec, state: PartedState) -> None:
        """Puts the instance back as it was before the attempt (at ``state.record``)."""
        snapshot = state.snapshot
        if snapshot is None:
            return
        state.snapshot = state.pending = None
        state.pending_keys = []  # (an attempt undone wrote nothing for its commit to take over)
        attributes = state.instance.__dict__
        attributes.clear()
        attributes.update(snapshot)
        small: dict[str, Any] | None = None
        for name, value in snapshot.items():
            if name in state.exploded:
                if type(value) is TrackedDict and not value.rollback():
                    state.broken = True
            elif immutable(value):
                continue
            elif name in state.wholes:
                attributes[name] = self._load(spec, state.wholes[name])
            else:
                if small is None:
                    small = self._small_attributes(spec, state, state.small)
                if name in small:
                    attributes[name] = small[name]

    def _write_of(self, spec: ObjectSpec, state: PartedState) -> Split | bytes | None:
        """What the attempt writes: the head and the parts it changed, or everything anew
        when the layout no longer fits (see the module docstring)."""
        snapshot = state.snapshot or {}
        attributes = state.instance.__dict__
        changed: dict[str, bytes | None] = {}
        pending_keys: list[tuple[str, Any, int]] = []
        wholes = state.wholes
        small: dict[str, Any] = {}
        for name, value in attributes.items():
            if name in state.exploded:
                if value is not snapshot.get(name) or type(value) is not TrackedDict or value.spoiled:
                    return self.layout_write(spec, state.instance, state)[0]
                overridden = state.overridden[name]
                places = {key: i for i, key in enumerate(value.inserted)} if value.inserted else {}
                base = (state.record.version + 1) << 32 if state.record is not None else 1 << 32
                for key in value.changed_keys():
                    if key not in value:
                        changed[entry_part(name, key)] = b""
                        pending_keys.append((name, key, -1))
                        continue
                    place = places.get(key)
                    stamp = base + place if place is not None else max(overridden.get(key, 0), 0)
                    changed[entry_part(name, key)] = b"%d:%s" % (stamp, self._dump(spec, name, value[key]))
                    pending_keys.append((name, key, stamp))
                if len(overridden) + len(pending_keys) > max(COMPACT_FROM, len(value) // 2):
                    return self.layout_write(spec, state.instance, state)[0]  # fold them in
            elif name in state.wholes:
                if value is snapshot.get(name) and immutable(value):
                    continue
                data = self._dump(spec, name, value)
                if data != wholes[name]:
                    if wholes is state.wholes:
                        wholes = dict(wholes)
                    changed["a" + name] = wholes[name] = data
            else:
                small[name] = value
        if any(name not in attributes for name in (*state.wholes, *state.exploded)):
            return self.layout_write(spec, state.instance, state)[0]
        small_bytes = self._dump(spec, "(small attributes)", small)
        if len(small_bytes) > PART_FROM:
            return self.layout_write(spec, state.instance, state)[0]
        if not changed and small_bytes == state.small:
            return None
        state.pending = (small_bytes, wholes, state.exploded, state.generation)
        state.pending_keys = pending_keys
        if state.layout is None:
            state.layout = Head.layout(self.codec, spec, list(wholes), list(state.exploded), state.generation)
        head = state.layout + small_bytes
        return Split(head, PartsWrite(changed)) if changed else head

    def layout_write(self, spec: ObjectSpec, instance: Any, state: PartedState | None) -> tuple[Split | bytes, PartedState]:
        """The instance written anew: as one record when no attribute is large, else as a
        head and every part (a new generation). Large dicts that fit become tracked."""
        attributes = instance.__dict__
        small: dict[str, Any] = {}
        parts: dict[str, bytes | None] = {}
        wholes: dict[str, bytes] = {}
        exploded: list[str] = []
        for name, value in list(attributes.items()):
            data = self._dump(spec, name, value)
            if len(data) <= PART_FROM:
                small[name] = value
            elif explodable(name, value):
                # a new one, so that the attempt's own (in the snapshot) can still be undone
                attributes[name] = TrackedDict(value)
                exploded.append(name)
                parts["b" + name] = data
            else:
                wholes[name] = data
                parts["a" + name] = data
        if state is None:
            state = PartedState(None, instance, b"", {}, frozenset(), "")
            state.snapshot = {}
        state.pending_keys = []
        if not parts:
            whole = self.objects.encode(spec, instance)
            state.pending = None
            return (Split(whole, PartsWrite({}, reset=True)) if state.record is not None else whole), state
        generation = os.urandom(6).hex()
        small_bytes = self._dump(spec, "(small attributes)", small)
        state.pending = (small_bytes, wholes, frozenset(exploded), generation)
        head = Head.layout(self.codec, spec, list(wholes), exploded, generation) + small_bytes
        return Split(head, PartsWrite(parts, reset=True)), state

    def commit(self, spec: ObjectSpec, state: PartedState, record: Record | None) -> None:
        """The attempt's write applied and left ``record`` (None: writes by others
        followed it, so this state is not kept)."""
        key = spec.key
        state.snapshot = None
        engine = self.objects.engine
        if record is None or state.aliased or not is_parted(engine.frame_of(key, record).payload):
            state.pending = None
            engine.parts_since.pop(key, None)
            return
        if state.pending is not None:
            if state.pending[3] != state.generation:  # a new layout: no overrides yet
                state.overridden = {name: {} for name in state.pending[2]}
                state.layout = None
            state.small, state.wholes, state.exploded, state.generation = state.pending
            state.pending = None
        for name, entry, stamp in state.pending_keys:
            state.overridden[name][entry] = stamp
        state.pending_keys = []
        for name in state.exploded:
            state.instance.__dict__[name].commit()
        state.record = record
        self.states[key] = state
        if len(self.states) > bounded.KEEP_NAMES:
            bounded.trim(self.states)
        engine.parts_since[key] = record.version


def _run_call(instance: Any, entry: tuple[Any, ...]) -> tuple[Any, bool]:
    """One call on the kept instance; arguments and results that could alias it are
    copies, so the caller keeps no handle into the state this process keeps. Returns the
    result and whether something could not be copied (a lock, a socket)."""
    method, args, kwargs, context = entry
    aliased = False
    if not all(immutable(a) for a in args) or (kwargs and not all(immutable(v) for v in kwargs.values())):
        try:
            args, kwargs = copy.deepcopy((args, kwargs))
        except Exception:
            aliased = True
    target: Callable[..., Any] = (
        getattr(instance, method) if isinstance(method, str) else functools.partial(method, instance)
    )
    result = target(*args, **kwargs) if context is None else context.run(target, *args, **kwargs)
    if type(result) is GeneratorType:
        result = list(result) if context is None else context.run(list, result)
    if immutable(result):
        return result, aliased
    try:
        return copy.deepcopy(result), aliased
    except Exception:
        return result, True


__all__ = ["Parting"]
