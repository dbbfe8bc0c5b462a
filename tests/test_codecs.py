"""The codecs on their own: what round-trips, what is refused, and how."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import pytest

from sharedstate import ConfigurationError, CorruptStoreError, SerializationError, SignatureError
from sharedstate.codecs import JSONCodec, SignedPickleCodec, make_codec

from .models import Point


class Color(enum.Enum):
    RED = "red"


VALUES = [
    {1: "int key", (1, 2): "tuple key", "x": [1, (2, 3)]},
    {"__t": "a user key that looks like our tag"},
    (1, (2, (3,))),
    {3, 1, 2},
    frozenset({"a"}),
    dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2026, 1, 1),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=-1, seconds=3),
    Decimal("3.14159265358979323846"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"\x00binary",
    Color.RED,
    Point(3, 4),
    [None, True, False, 1.5, -0.0, 10**40, "ünïcode"],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("codec", [JSONCodec(), SignedPickleCodec(b"key")], ids=["json", "pickle"])
def test_round_trip_keeps_value_and_type(codec, value):
    back = codec.loads(codec.dumps({"v": value}))["v"]
    assert back == value and type(back) is type(value)


def test_object_records_round_trip():
    codec = JSONCodec()
    data = codec.dump_object("m:C", {"a": (1, 2), "b": {1: 2}}, None)
    assert codec.loads(data) == {"c": "m:C", "s": {"a": (1, 2), "b": {1: 2}}}
    held = codec.dump_object("m:C", {"a": 1}, ["owner", 12.5])
    assert codec.loads(held) == {"c": "m:C", "h": ["owner", 12.5], "s": {"a": 1}}


def test_unencodable_value_is_named_by_its_path():
    with pytest.raises(SerializationError, match=r"type object at \['s'\]\['nested'\]\[1\]\['k'\]") as caught:
        JSONCodec().dumps({"s": {"nested": [1, {"k": object()}]}})
    assert caught.value.path == ["s", "nested", 1, "k"]


def test_self_referencing_state_is_refused_with_its_path():
    loop: list = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="contains itself") as caught:
        JSONCodec().dump_object("m:C", {"loop": loop}, None)
    assert caught.value.path == ["s", "loop", 0]
    ring: dict = {"a": {}}
    ring["a"]["back"] = ring
    with pytest.raises(SerializationError, match=r"at \['s'\]\['ring'\]\['a'\]\['back'\]"):
        JSONCodec().dump_object("m:C", {"ring": ring}, ["owner", 1.0])


def test_deep_state_without_a_cycle_is_refused_with_its_path():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested more than") as caught:
        JSONCodec().dump_object("m:C", {"deep": deep}, None)
    assert caught.value.path[:2] == ["s", "deep"]


@pytest.mark.parametrize(
    "state, path",
    [
        ({"name": "a\ud800b"}, ["s", "name"]),
        ({"d": {"k\udc80": 1}}, ["s", "d", "k\udc80"]),
        ({"items": [1, ("ok", "\udfff")]}, ["s", "items", 1, 1]),
        ({"p": Point("\ud83d", 0)}, ["s", "p", "x"]),
    ],
)
def test_lone_surrogate_is_refused_with_its_path(state, path):
    with pytest.raises(SerializationError, match="lone surrogate") as caught:
        JSONCodec().dump_object("m:C", state, None)
    assert caught.value.path == path
    assert SignedPickleCodec(b"k").loads(SignedPickleCodec(b"k").dump_object("m:C", state, None))["s"] == state


def test_nested_dataclass_follows_its_class_as_it_is_now():
    """A stored field the class no longer has is dropped; one it lacks is left for the
    class's default (see test_class_evolution.py for defaults on every backend)."""
    point = JSONCodec().loads(b'{"__t": "dataclass", "c": "tests.models:Point", "v": {"x": 1, "y": 2, "z": 3}}')
    assert point == Point(1, 2) and not hasattr(point, "z")


def test_unpicklable_value_is_named():
    with pytest.raises(SerializationError, match=r"\['s'\]\['gen'\]"):
        SignedPickleCodec(b"k").dumps({"s": {"gen": (i for i in range(3))}})


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"__t": "nope", "v": 1}', "unknown type tag"),
        (b'{"__t": "datetime", "v": "yesterday"}', "malformed"),
        (b'{"__t": "dataclass", "c": "decimal:Decimal", "v": {}}', "not one"),
        (b'{"__t": "dataclass", "c": "no.such.module:X", "v": {}}', "cannot be imported"),
        (b'{"__t": "dataclass", "c": "tests.models:Point", "v": [1, 2]}', "malformed"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_entries_are_corrupt_store_errors(data, message):
    with pytest.raises(CorruptStoreError, match=message):
        JSONCodec().loads(data)


def test_signature_is_checked_before_unpickling():
    codec = SignedPickleCodec("one key")
    data = codec.dumps({"x": 1})
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(SignatureError):
        codec.loads(tampered)
    with pytest.raises(SignatureError):
        SignedPickleCodec("another key").loads(data)
    with pytest.raises(SignatureError):
        codec.loads(data[:10])  # truncated
    assert "one key" not in repr(codec)


def test_make_codec():
    assert make_codec(None, None).name == "json"
    assert make_codec("pickle", "k").name == "pickle"
    with pytest.raises(ConfigurationError):
        make_codec("pickle", "")
