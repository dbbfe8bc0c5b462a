"""How state becomes bytes in a store, and back.

Two codecs:

* :class:`JSONCodec` (the default) stores the Python types people keep in such objects
  (dict with any hashable keys, list, tuple, set, frozenset, str, int, float, bool, None,
  datetime, date, time, timedelta, Decimal, UUID, bytes, Enum members and dataclasses) as
  JSON, tagging the types JSON lacks so that a tuple comes back a tuple and ``{1: "a"}`` keeps
  its int key. Reading JSON can never run code, which is why it is the default.
* :class:`SignedPickleCodec` stores anything pickle can, but only with a secret key: each
  entry carries an HMAC-SHA256 of its bytes, checked in constant time *before* unpickling,
  so a store writer without the key cannot make a reader run code (caches that unpickle
  whatever they read have had exactly that remote-code-execution bug).

Both raise :class:`~sharedstate.errors.SerializationError` with the path of the value they
cannot store, so the message can name the attribute; nothing is stored in that case.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import io
import json
import uuid
from decimal import Decimal
from typing import Any, Protocol

from .classrefs import (
    MainAwareUnpickler,
    Stored,
    ToolUnpickler,
    import_class,
    make_dataclass,
    pickle_dumps,
    shown,
)
from .codec_errors import (
    Unencodable,
    bad_text_error,
    find_unencodable,
    find_unpicklable,
    nesting_error,
    unencodable_error,
)
from .errors import ConfigurationError, CorruptStoreError, SignatureError
from .tracked import TrackedDict

TAG = "__t"  # key marking a tagged value in JSON; user dicts holding it are escaped
PICKLE_MAGIC = b"SSP1"
_MAC_SIZE = hashlib.sha256().digest_size


class Codec(Protocol):
    """Turns values into bytes and back; ``dump_object`` writes a shared object's record."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes, tool: bool = False) -> Any: ...

    def dump_object(
        self, class_path: str, state: Any, hold: list[Any] | None, items: Any = None
    ) -> bytes: ...


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _sort_if_possible(items: list[Any]) -> list[Any]:
    """Sets are written in a stable order where their members sort, so an unchanged set
    encodes to the same bytes (and an unchanged state is not rewritten)."""
    try:
        return sorted(items)
    except TypeError:
        return items


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _to_json(value: Any) -> Any:
    """Converts a value to plain JSON types, tagging what JSON cannot say by itself."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [item if type(item) in _SCALARS else _to_json(item) for item in value]
    if kind is dict or kind is TrackedDict:
        if TAG not in value:
            # one pass, as a loop: a generator for the key check and a comprehension for
            # the copy cost four times as much on the small dict every call encodes
            plain = {}
            for key, item in value.items():
                if type(key) is not str:
                    break
                plain[key] = item if type(item) in _SCALARS else _to_json(item)
            else:
                return plain
        return {TAG: "dict", "v": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if kind is tuple:
        return {TAG: "tuple", "v": [_to_json(item) for item in value]}
    if kind is set or kind is frozenset:
        items = _sort_if_possible(list(value))
        return {TAG: kind.__name__, "v": [_to_json(item) for item in items]}
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "c": _class_path(kind), "v": _to_json(value.value)}
    if kind is dt.datetime:
        return {TAG: "datetime", "v": value.isoformat()}
    if kind is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is dt.time:
        return {TAG: "time", "v": value.isoformat()}
    if kind is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if kind is uuid.UUID:
        return {TAG: "uuid", "v": str(value)}
    if kind is bytes:
        return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {TAG: "dataclass", "c": _class_path(kind), "v": fields}
    raise Unencodable(value)


def _from_tagged(obj: dict[str, Any], resolve: bool = True) -> Any:
    """``object_hook`` for json.loads: rebuilds the tagged values. ``resolve=False`` (a tool
    reading state without the classes): a dataclass or Enum whose class cannot be imported
    comes back as a :class:`~sharedstate.classrefs.Stored` stand-in."""
    tag = obj.get(TAG)
    if tag is None:
        return obj
    payload: Any = obj.get("v")
    try:
        if not resolve and tag in ("enum", "dataclass"):
            try:
                import_class(obj["c"])
            except CorruptStoreError:
                if tag == "enum":
                    return Stored(obj["c"], args=(payload,))
                return Stored(obj["c"], payload)
        if tag == "tuple":
            return tuple(payload)
        if tag == "set":
            return set(payload)
        if tag == "frozenset":
            return frozenset(payload)
        if tag == "dict":
            return {_hashable(k): v for k, v in payload}
        if tag == "datetime":
            return dt.datetime.fromisoformat(payload)
        if tag == "date":
            return dt.date.fromisoformat(payload)
        if tag == "time":
            return dt.time.fromisoformat(payload)
        if tag == "timedelta":
            return dt.timedelta(days=payload[0], seconds=payload[1], microseconds=payload[2])
        if tag == "decimal":
            return Decimal(payload)
        if tag == "uuid":
            return uuid.UUID(payload)
        if tag == "bytes":
            return base64.b64decode(payload)
        if tag == "enum":
            cls = import_class(obj["c"])
            if not issubclass(cls, enum.Enum):
                raise CorruptStoreError(f"{obj['c']!r} is stored as an Enum but is not one")
            return cls(payload)
        if tag == "dataclass":
            return make_dataclass(import_class(obj["c"]), payload, obj["c"])
    except CorruptStoreError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise CorruptStoreError(f"stored {tag} value is malformed: {exc}") from exc
    raise CorruptStoreError(f"stored value has an unknown type tag {tag!r}")


def _hashable(key: Any) -> Any:
    """JSON has no tuple: a list that came back as a dict key was a tuple key."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


# Made once: json.dumps/json.loads (and JSONEncoder.encode) build a new encoder or decoder
# on every call, which costs more than encoding a small state. The C encoder, made once,
# is what JSONEncoder uses inside; where it is missing, JSONEncoder is the fallback.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder(object_hook=_from_tagged)
_TOOL_DECODER = json.JSONDecoder(object_hook=lambda obj: _from_tagged(obj, resolve=False))
_C_ENCODER = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def _encode_plain(value: Any) -> bytes:
    """Plain JSON types (as ``_to_json`` returns them) to compact UTF-8 JSON."""
    if _C_ENCODER is not None:
        return "".join(_C_ENCODER(value, 0)).encode("utf-8")
    return _ENCODER.encode(value).encode("utf-8")


class JSONCodec:
    """The default codec: JSON with type tags; decoding never runs code."""

    name = "json"

    def __init__(self) -> None:
        self._headers: dict[str, bytes] = {}

    def dump_object(
        self, class_path: str, state: Any, hold: list[Any] | None, items: Any = None
    ) -> bytes:
        """``{"c": class_path, "h": hold, "s": state, "i": items}`` as bytes (``items``: those
        of a dict, list or set subclass; None: none); only the state is walked (the rest is
        a header made once per class), since this runs on every call."""
        if hold is not None:
            return self.dumps(_envelope(class_path, state, hold, items))
        header = self._headers.get(class_path)
        if header is None:
            header = b'{"c":' + _encode_plain(class_path) + b',"s":'
            self._headers[class_path] = header
        try:
            body = _encode_plain(_to_json(state))
            if items is not None:
                body += b',"i":' + _encode_plain(_to_json(items))
        except (Unencodable, RecursionError, UnicodeEncodeError):
            return self.dumps(_envelope(class_path, state, None, items))  # raises, naming the path
        return header + body + b"}"

    def dumps(self, value: Any) -> bytes:
        try:
            return _encode_plain(_to_json(value))
        except Unencodable:
            path, bad = find_unencodable(value, _to_json) or ([], value)
            raise unencodable_error(self.name, path, bad) from None
        except RecursionError:
            raise nesting_error(self.name, value) from None
        except UnicodeEncodeError as exc:  # a lone surrogate: UTF-8 has no bytes for it
            raise bad_text_error(self.name, value, exc) from None

    def loads(self, data: bytes, tool: bool = False) -> Any:
        """The stored value; ``tool``: read by a tool without the classes (see
        ``classrefs.Stored``)."""
        if data.startswith(PICKLE_MAGIC):
            raise ConfigurationError(
                "this entry was written with the pickle codec; connect with "
                "codec='pickle' and the same secret_key to read it"
            )
        try:
            return (_TOOL_DECODER if tool else _DECODER).decode(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptStoreError(f"stored entry is not valid JSON: {exc}") from exc


class SignedPickleCodec:
    """Pickle, signed with a secret key; an entry with a bad signature is never unpickled.

    It also reads entries written by the JSON codec, so a store can move to pickle later.
    """

    name = "pickle"

    def __init__(self, secret_key: bytes | str) -> None:
        if isinstance(secret_key, str):
            secret_key = secret_key.encode("utf-8")
        if not secret_key:
            raise ConfigurationError("the pickle codec needs a non-empty secret_key")
        self._key = secret_key

    def __repr__(self) -> str:  # never show the key
        return "SignedPickleCodec(secret_key=***)"

    def dump_object(
        self, class_path: str, state: Any, hold: list[Any] | None, items: Any = None
    ) -> bytes:
        return self.dumps(_envelope(class_path, state, hold, items))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        try:
            payload = pickle_dumps(value)
        except Exception as exc:  # pickle raises several types (PicklingError, TypeError, ...)
            path, bad = find_unpicklable(value)
            raise unencodable_error(self.name, path, bad, exc) from exc
        return PICKLE_MAGIC + self._mac(payload) + payload

    def loads(self, data: bytes, tool: bool = False) -> Any:
        if not data.startswith(PICKLE_MAGIC):
            return JSONCodec().loads(data, tool)
        mac = data[len(PICKLE_MAGIC) : len(PICKLE_MAGIC) + _MAC_SIZE]
        payload = data[len(PICKLE_MAGIC) + _MAC_SIZE :]
        if len(mac) != _MAC_SIZE or not hmac.compare_digest(mac, self._mac(payload)):
            raise SignatureError(
                "a pickle entry's signature does not match the secret key: refused, not unpickled "
                "(tampered entry, or a different key)"
            )
        try:
            if tool:
                return shown(ToolUnpickler(io.BytesIO(payload)).load())
            return MainAwareUnpickler(io.BytesIO(payload)).load()
        except Exception as exc:
            raise CorruptStoreError(f"signed pickle entry cannot be unpickled: {exc}") from exc


def _envelope(class_path: str, state: Any, hold: list[Any] | None, items: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {"c": class_path, "s": state}
    if hold is not None:
        envelope["h"] = hold
    if items is not None:
        envelope["i"] = items
    return envelope


def make_codec(name: str | None, secret_key: bytes | str | None) -> Codec:
    """The codec for ``connect(..., codec=..., secret_key=...)``."""
    if name in (None, "json"):
        return JSONCodec()
    if name == "pickle":
        if not secret_key:
            raise ConfigurationError(
                "codec='pickle' needs secret_key=...: unsigned pickles from a store could run "
                "arbitrary code when read"
            )
        return SignedPickleCodec(secret_key)
    raise ConfigurationError(f"unknown codec {name!r}: use 'json' (default) or 'pickle'")
