"""One readable family of errors.

Every error sharedstate raises derives from :class:`SharedStateError`, so an app can catch
the whole family in one place; each cause has its own class and a message that names what
went wrong (the store, the name, the attribute) rather than a driver's traceback. The
driver's own exception is kept as ``__cause__`` for debugging.
"""

from __future__ import annotations


class SharedStateError(Exception):
    """Base class of every error raised by sharedstate."""


class InvalidURLError(SharedStateError, ValueError):
    """The store URL cannot be used: unknown scheme, missing part or bad query parameter."""


class ConfigurationError(SharedStateError):
    """The store or an option is set up in a way that cannot work (e.g. pickle without a key)."""


class BackendUnavailableError(SharedStateError, ConnectionError):
    """The store cannot be reached or opened: server down, wrong password, unwritable path."""


class StoreTimeoutError(SharedStateError, TimeoutError):
    """The store did not answer, or a lock was not granted, within the time allowed."""


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


class ClassMismatchError(SharedStateError, TypeError):
    """A name is already stored with another class; states are never mixed."""


class LeaseExpiredError(SharedStateError):
    """A lock's lease (or a transaction's hold) ended before its holder was done with it."""


__all__ = [
    "BackendUnavailableError",
    "ClassMismatchError",
    "ConfigurationError",
    "CorruptStoreError",
    "InvalidURLError",
    "LeaseExpiredError",
    "SerializationError",
    "SharedStateError",
    "SignatureError",
    "StateLostError",
    "StoreTimeoutError",
]
