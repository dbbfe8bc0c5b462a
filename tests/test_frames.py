"""The stored frame of a record: its call ids survive every write in order, whatever wrote
the record before (ids of other widths, more ids than are kept, a hold)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharedstate.errors import CorruptStoreError
from sharedstate.frames import EMPTY, KEEP_IDS, MAGIC, Frame, decode_frame, new_id

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _stored(ids: list[str], payload: bytes = b"state", hold: str = "") -> bytes:
    return MAGIC + ",".join(ids).encode() + b"|" + hold.encode() + b"\n" + payload


def test_new_ids_are_unique_and_never_hold_a_separator():
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert not any(c in i for i in ids for c in ",|:\n")


def test_each_write_keeps_the_last_ids_in_order_and_round_trips():
    frame, written = EMPTY, []
    for n in range(KEEP_IDS * 3):
        call_id = new_id()
        written.append(call_id)
        frame = frame.written(call_id, b"payload %d" % n)
        assert frame.ids == tuple(written[-KEEP_IDS:])
        assert frame.id_count == len(frame.ids)
        assert decode_frame(frame.encode()) == frame
        assert decode_frame(frame.encode()).id_count == frame.id_count


@settings(max_examples=200, derandomize=True)
@given(
    st.lists(st.text(_ID_CHARS, min_size=1, max_size=24), min_size=0, max_size=KEEP_IDS + 6),
    st.lists(st.sampled_from([None, ("owner-1", 2.5)]), min_size=1, max_size=KEEP_IDS + 2),
)
def test_ids_of_any_width_from_an_earlier_writer_are_dropped_oldest_first(foreign, holds):
    """A record written by an earlier version (ids of other widths), or holding more ids
    than are kept: the oldest go, never a piece of one."""
    frame = decode_frame(_stored(foreign))
    assert frame.ids == tuple(foreign)
    expected = list(foreign)
    for hold in holds:
        call_id = new_id()
        expected.append(call_id)
        frame = decode_frame(frame.written(call_id, b"x", hold).encode())
        assert frame.ids == tuple(expected[-KEEP_IDS:])
        assert frame.hold == hold


def test_a_lost_write_is_found_at_its_place_among_the_ids():
    frame = EMPTY
    ids = []
    for _ in range(5):
        ids.append(new_id())
        frame = frame.written(ids[-1], b"x")
    # the record is at version 5; the write of ids[2] expected version 2
    assert frame.applied(5, 2, ids[2]) is True
    assert frame.applied(5, 2, new_id()) is False
    assert frame.applied(1, 2, ids[2]) is False  # the record is older than that write
    assert frame.applied(5 + KEEP_IDS, 0, ids[0]) is None  # beyond the ids kept


def test_a_record_without_a_frame_is_all_payload():
    assert decode_frame(b'{"n": 1}') == Frame(b'{"n": 1}')
    assert Frame(b'{"n": 1}').encode() == b'{"n": 1}'


@pytest.mark.parametrize(
    "data",
    [MAGIC + b"abc|", MAGIC + "\u00e9t\u00e9|\n".encode() + b"x", MAGIC + b"a|owner:soon\nx"],
    ids=["no end", "not ascii", "ttl not a number"],
)
def test_a_damaged_header_is_a_corrupt_store(data):
    with pytest.raises(CorruptStoreError, match="header is damaged"):
        decode_frame(data)
