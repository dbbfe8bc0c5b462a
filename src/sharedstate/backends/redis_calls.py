"""Redis's Lua scripts (a record's compare-and-set, with or without parts, a counter's call
log) and its persistence check, apart from the backend.

``redis.py`` (and the async backend) send these scripts; here is what they do on the
server, how a compare-and-set is packed, and the one check of the server's settings made
at a process's first connection.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import redis

from .base import KEEP_REMOVED, Parts, PartsWrite

#: Atomic compare-and-set of a record. KEYS[1]: the record; ARGV[1]: the expected version
#: ('' = absent); ARGV[2]: the new data, whole (its frame's ids included: the engine framed
#: them on the expected version, so they are the stored ones plus this write's). Returns
#: the new version (an integer) on success, else the current record as {version, data}
#: ({} when absent): an integer is the cheapest reply to parse, and success is the hot
#: path. Two commands and no string work on the server's side: a script's every command
#: and string operation is paid inside the call's round trip (taking the ids from the
#: stored data instead of sending them cost 5-7 us more per call on this path than the
#: 170 bytes it saved). Atomic because Redis runs the whole script before any other
#: command: the read, the compare and the write must not be split by another writer. The
#: current version goes back as the stored string, so that a damaged one reaches the
#: client to be reported (``tonumber`` would turn it into nil, which ends a Lua array: the
#: record would look absent).
COMPARE_AND_SET = """local version = redis.call('HGET', KEYS[1], 'v')
if version == false then
  if ARGV[1] == '' then
    redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[2])
    return 1
  end
  return {}
end
if version == ARGV[1] then
  local next = tonumber(version) + 1
  redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
  return next
end
return {version, redis.call('HGET', KEYS[1], 'd')}
"""

#: A compare-and-set of the head with the changes to the parts (``PartsWrite``), one
#: atomic script. KEYS: the head (as in ``COMPARE_AND_SET``), then ``parts_keys``: a hash
#: part -> data of the live parts, a sorted set part -> version of the live parts, and a
#: sorted set part -> version of the tombstones. ARGV[1..2]: as in ``COMPARE_AND_SET``;
#: ARGV[3]: '1' for a reset (a new record is one too: any parts left behind go); ARGV[4]:
#: n, the number of parts written, then their n (part, data) pairs, then the names of the
#: parts removed. Parts go in slices of 1000 arguments (Lua's ``unpack`` is bounded by its
#: C stack). Tombstones older than ``KEEP_REMOVED`` versions are purged (a range delete on
#: their sorted set: no scan). Same replies as ``COMPARE_AND_SET``.
PARTS_WRITE = (
    """
local version = redis.call('HGET', KEYS[1], 'v')
local new
if version == false then
  if ARGV[1] ~= '' then return {} end
  new = 1
  redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[2])
elseif version == ARGV[1] then
  new = tonumber(version) + 1
  redis.call('HSET', KEYS[1], 'v', new, 'd', ARGV[2])
else
  return {version, redis.call('HGET', KEYS[1], 'd')}
end
local reset = ARGV[3] == '1' or new == 1
if reset then redis.call('DEL', KEYS[2], KEYS[3], KEYS[4]) end
local tombs = not reset and redis.call('EXISTS', KEYS[4]) == 1
local last = 4 + 2 * tonumber(ARGV[4])
for i = 5, last, CHUNK do
  local j = math.min(i + CHUNK - 1, last)
  redis.call('HSET', KEYS[2], unpack(ARGV, i, j))
  local stamped, names = {}, {}
  for k = i, j, 2 do
    stamped[#stamped + 1] = new
    stamped[#stamped + 1] = ARGV[k]
    names[#names + 1] = ARGV[k]
  end
  redis.call('ZADD', KEYS[3], unpack(stamped))
  if tombs then redis.call('ZREM', KEYS[4], unpack(names)) end
end
if not reset then
  for i = last + 1, #ARGV, CHUNK do
    local j = math.min(i + CHUNK - 1, #ARGV)
    redis.call('HDEL', KEYS[2], unpack(ARGV, i, j))
    redis.call('ZREM', KEYS[3], unpack(ARGV, i, j))
    local stamped = {}
    for k = i, j do
      stamped[#stamped + 1] = new
      stamped[#stamped + 1] = ARGV[k]
    end
    redis.call('ZADD', KEYS[4], unpack(stamped))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', new - REMOVED_KEPT)
end
return new
""".replace("REMOVED_KEPT", str(KEEP_REMOVED)).replace("CHUNK", "1000")
)

#: The head and its parts after version ARGV[1] (0: every live part), one atomic script
#: (one snapshot). KEYS: as in ``PARTS_WRITE``. Returns {} when there is no head, else
#: {version, data, {part, data, ...}, {removed part, ...}}: the changed parts found by a
#: range of the versions' sorted set, so the cost follows the parts changed, not all.
LOAD_PARTS = """
local head = redis.call('HMGET', KEYS[1], 'v', 'd')
if not head[1] then return {} end
if ARGV[1] == '0' then
  return {head[1], head[2] or '', redis.call('HGETALL', KEYS[2]), {}}
end
local after = '(' .. ARGV[1]
local names = redis.call('ZRANGEBYSCORE', KEYS[3], after, '+inf')
local changed = {}
for i = 1, #names, 1000 do
  local values = redis.call('HMGET', KEYS[2], unpack(names, i, math.min(i + 999, #names)))
  for k = 1, #values do
    changed[#changed + 1] = names[i + k - 1]
    changed[#changed + 1] = values[k] or ''
  end
end
return {head[1], head[2] or '', changed, redis.call('ZRANGEBYSCORE', KEYS[4], after, '+inf')}
"""

#: Shared by the two counter scripts: a counter's call log is two generations of hashes,
#: KEYS[2] (current) and KEYS[3] (previous), of ``#call id -> value`` (``f``: fenced). When
#: the current one holds more than ARGV[3] ids it becomes the previous one (the older is
#: dropped) and records ``@t``, when it began, and ``@h``, the horizon: the newest time an
#: id was dropped (``calls.py``). Every id is so kept for at least ARGV[3] later adds.
_ROTATE = """
local function rotate()
  if redis.call('HLEN', KEYS[2]) <= tonumber(ARGV[3]) + 2 then return end
  local t = redis.call('TIME')
  local horizon = redis.call('HGET', KEYS[2], '@t') or 0
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], '@t', t[1] * 1000 + math.floor(t[2] / 1000), '@h', horizon)
end
"""

#: An add with a call id. KEYS[1]: the counter; ARGV[1]: delta, ARGV[2]: '#' .. call id.
#: An id already logged is not added again: its value, or an error if it was fenced. A
#: value past 2**53 is read back with GET: a Lua number is a double.
COUNTER_ADD = (
    _ROTATE
    + """
local done = redis.call('HGET', KEYS[2], ARGV[2]) or redis.call('HGET', KEYS[3], ARGV[2])
if done == 'f' then return redis.error_reply('FENCED this add was given up: it never runs') end
if done then return done end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if math.abs(value) >= 2^53 then value = redis.call('GET', KEYS[1]) end
redis.call('HSET', KEYS[2], ARGV[2], value)
rotate()
return value
"""
)

#: The outcome of an add: {1, value} if it ran, else it is fenced and the reply is {0}, or
#: {2} when an id sent ARGV[2] milliseconds ago may have been dropped (unknown).
COUNTER_OUTCOME = (
    _ROTATE
    + """
local done = redis.call('HGET', KEYS[2], ARGV[1]) or redis.call('HGET', KEYS[3], ARGV[1])
if done == 'f' then return {0} end
if done then return {1, done} end
redis.call('HSET', KEYS[2], ARGV[1], 'f')
rotate()
local t = redis.call('TIME')
local horizon = tonumber(redis.call('HGET', KEYS[2], '@h') or 0)
if horizon >= t[1] * 1000 + t[2] / 1000 - tonumber(ARGV[2]) then return {2} end
return {0}
"""
)
#: ids kept per generation of a counter's call log
CALLS_KEPT = 2000


SHAS = {
    source: hashlib.sha1(source.encode()).hexdigest().encode()
    for source in (COUNTER_ADD, COUNTER_OUTCOME, PARTS_WRITE, LOAD_PARTS)
}


#: what a counter's call log adds to its key (a NUL: no name the store makes holds one)
CALL_LOG = b"\x00calls:"
#: what a record's three parts keys add to its key (``parts_keys``; ``keys()`` skips them)
PARTS = b"\x00parts:"


def parts_keys(head: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """A record's key and its parts keys: data by part, live versions, tombstones."""
    return head, head + PARTS + b"d", head + PARTS + b"v", head + PARTS + b"x"


def parts_write(
    head: bytes, expected: int | None, data: bytes, parts: PartsWrite
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """``PARTS_WRITE``'s keys and arguments for the record ``head`` (a new record is
    written as a reset: nothing of an earlier one may stay)."""
    reset = parts.reset or expected is None
    written: list[bytes] = []
    removed: list[bytes] = []
    for part, value in parts.changed.items():
        if value is not None:
            written += (part.encode(), value)
        elif not reset:
            removed.append(part.encode())
    version = b"" if expected is None else b"%d" % expected
    flags = (version, data, b"1" if reset else b"", b"%d" % (len(written) // 2))
    return parts_keys(head), (*flags, *written, *removed)


def parse_parts(reply: list[Any], since: int) -> tuple[bytes, bytes, Parts]:
    """The head's version and data, and its parts, from a ``LOAD_PARTS`` reply (not {})."""
    version, data, flat, removed = reply
    changed = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
    return version, data, Parts(since, changed, tuple(name.decode() for name in removed))


def pack_script(sha: bytes, keys: tuple[bytes, ...], args: tuple[bytes, ...]) -> bytes:
    """The RESP bytes of ``EVALSHA sha len(keys) *keys *args``."""
    count = b"%d" % len(keys)
    parts = [b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (3 + len(keys) + len(args), sha)]
    for item in (count, *keys, *args):
        parts += (b"$%d\r\n" % len(item), item, b"\r\n")
    return b"".join(parts)


_SCRIPT_SHA = hashlib.sha1(COMPARE_AND_SET.encode()).hexdigest()
_EVALSHA_HEAD = b"*6\r\n$7\r\nEVALSHA\r\n$40\r\n" + _SCRIPT_SHA.encode() + b"\r\n$1\r\n1\r\n"


def pack_compare_and_set(key: bytes, expected: bytes, data: bytes) -> bytes:
    """The RESP bytes of ``EVALSHA sha 1 key expected data`` (see ``COMPARE_AND_SET``):
    built here in one join, since redis-py's general packer costs a tenth of the whole
    call on this hot path."""
    return b"".join(
        (
            _EVALSHA_HEAD,
            b"$%d\r\n" % len(key),
            key,
            b"\r\n$%d\r\n" % len(expected),
            expected,
            b"\r\n$%d\r\n" % len(data),
            data,
            b"\r\n",
        )
    )


class RedisPersistenceWarning(UserWarning):
    """The Redis server keeps no append-only file: a restart can lose state."""


#: whether this process has read a server's persistence settings (it warns once)
persistence_checked = False


def check_persistence(connection: redis.Connection, host: str) -> None:
    """Warns, once per process, when the server keeps no append-only file (see ``redis.py``'s
    docstring); a server that refuses ``INFO`` (ACLs) is not judged."""
    global persistence_checked
    persistence_checked = True
    connection.send_command("INFO", "persistence", check_health=False)
    try:
        info = connection.read_response()
    except redis.ResponseError:
        return
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    if "aof_enabled:0" in text:
        warnings.warn(
            f"Redis at {host} runs without an append-only file (appendonly no): a "
            "restart or crash rolls it back to its last snapshot, or to nothing, and "
            "sharedstate's objects, counters and lock tokens with it (numbers handed out "
            "again). Set appendonly yes (appendfsync everysec or always) on the server.",
            RedisPersistenceWarning,
            stacklevel=2,
        )
