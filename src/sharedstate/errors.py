"""One readable family of errors.

Every error sharedstate raises derives from :class:`SharedStateError`, so an app can catch
the whole family in one place; each cause has its own class and a message that names what
went wrong (the store, the name, the attribute) rather than a driver's traceback. The
driver's own exception is kept as ``__cause__`` for debugging.

An error tells the truth about the call that raised it: every ``SharedStateError`` means
*this call did not take effect*, except :class:`OutcomeUnknownError`, raised only when a
write may have reached the store and the store stayed unreachable until the call's deadline,
so the client could not learn whether it took effect::

    SharedStateError
    ├── InvalidURLError (ValueError)
    ├── InvalidNameError (ValueError)
    ├── ConfigurationError
    ├── BackendUnavailableError (ConnectionError)
    ├── StoreTimeoutError (TimeoutError)
    ├── OutcomeUnknownError
    ├── CorruptStoreError
    │   └── SignatureError
    ├── StateLostError
    ├── SerializationError (TypeError)
    │   └── StateTooLargeError
    ├── CounterOverflowError (OverflowError)
    ├── ClassMismatchError (TypeError)
    ├── UnsupportedClassError (TypeError)
    └── LeaseExpiredError

Inside the package, a backend that fails *after* a request may have reached the server
(the socket broke or timed out after sending) marks its error with ``request_sent = True``
(see :func:`mark_sent`); the engine then learns the outcome from the store, and only when it
cannot does the caller get :class:`OutcomeUnknownError`.
"""

from __future__ import annotations


class SharedStateError(Exception):
    """Base class of every error raised by sharedstate."""


class InvalidURLError(SharedStateError, ValueError):
    """The store URL cannot be used: unknown scheme, missing part or bad query parameter."""


class InvalidNameError(SharedStateError, ValueError):
    """A name the store cannot hold (a NUL byte in PostgreSQL's text keys); nothing was sent."""


class ConfigurationError(SharedStateError):
    """The store or an option is set up in a way that cannot work (e.g. pickle without a key)."""


class BackendUnavailableError(SharedStateError, ConnectionError):
    """The store cannot be reached or opened: server down, wrong password, unwritable path."""


class StoreTimeoutError(SharedStateError, TimeoutError):
    """The store did not answer, or a lock was not granted, within the time allowed."""


class OutcomeUnknownError(SharedStateError):
    """The call's write may have reached the store, and the store stayed unreachable until
    the call's deadline: whether it took effect is unknown (the only error that says so)."""


class CorruptStoreError(SharedStateError):
    """What the store holds cannot be read back: a damaged file or an entry of unknown format."""


class SignatureError(CorruptStoreError):
    """A pickle entry whose signature does not match the key: refused, never unpickled."""


class StateLostError(SharedStateError):
    """State that existed has vanished (e.g. evicted by memcached).

    It is never silently re-created from the factory: that would hand out numbers again.
    """


class SerializationError(SharedStateError, TypeError):
    """The object's state holds a value the codec cannot store; nothing was stored."""

    def __init__(self, message: str, attribute: str | None = None) -> None:
        super().__init__(message)
        self.attribute = attribute


class StateTooLargeError(SerializationError):
    """The encoded state is larger than the store takes in one item (memcached: 1 MB by
    default, its ``-I`` option); nothing was stored."""


class CounterOverflowError(SharedStateError, OverflowError):
    """A counter would leave the range every store holds exactly (64-bit signed; memcached:
    ±2**62, see its backend); the add or set changed nothing. Never a wrapped or rounded
    value: SQLite would turn to floats, memcached would wrap around."""


class ClassMismatchError(SharedStateError, TypeError):
    """A name is already stored with another class; states are never mixed."""


class UnsupportedClassError(SharedStateError, TypeError):
    """A class whose state sharedstate could not keep (refused at ``store.object(...)``
    rather than losing writes later), or a method that cannot run as one atomic step; the
    message names the class, the attribute or method, and what to do instead."""


class LeaseExpiredError(SharedStateError):
    """A lock's lease (or a transaction's hold) ended before its holder was done with it."""


def mark_sent(error: SharedStateError, sent: bool = True) -> SharedStateError:
    """Marks a backend error as raised after the request may have reached the server."""
    error.request_sent = sent  # type: ignore[attr-defined]
    return error


def request_sent(error: BaseException) -> bool:
    """Whether ``error`` came after the request may have reached the server."""
    return bool(getattr(error, "request_sent", False))


__all__ = [
    "BackendUnavailableError",
    "ClassMismatchError",
    "ConfigurationError",
    "CorruptStoreError",
    "CounterOverflowError",
    "InvalidNameError",
    "InvalidURLError",
    "LeaseExpiredError",
    "OutcomeUnknownError",
    "SerializationError",
    "SharedStateError",
    "SignatureError",
    "StateLostError",
    "StateTooLargeError",
    "StoreTimeoutError",
    "UnsupportedClassError",
]
