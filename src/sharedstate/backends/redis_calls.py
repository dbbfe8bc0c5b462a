"""Redis's counter call log (Lua scripts) and its persistence check, apart from the backend.

``redis.py`` sends these scripts; here is what they do on the server, and the one check of
the server's settings made at a process's first connection.
"""

from __future__ import annotations

import hashlib
import warnings

import redis

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
    for source in (COUNTER_ADD, COUNTER_OUTCOME)
}


#: what a counter's call log adds to its key (a NUL: no name the store makes holds one)
CALL_LOG = b"\x00calls:"


def pack_script(sha: bytes, keys: tuple[bytes, ...], args: tuple[bytes, ...]) -> bytes:
    """The RESP bytes of ``EVALSHA sha len(keys) *keys *args``."""
    count = b"%d" % len(keys)
    parts = [b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (3 + len(keys) + len(args), sha)]
    for item in (count, *keys, *args):
        parts += (b"$%d\r\n" % len(item), item, b"\r\n")
    return b"".join(parts)


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
