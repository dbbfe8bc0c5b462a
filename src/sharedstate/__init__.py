"""sharedstate: a module global made one shared, atomic, linearizable object.

    import sharedstate
    store = sharedstate.connect("sqlite:///var/state.db")
    global_obj = store.object("global_obj", SomeObj, 0)   # was: global_obj = SomeObj(0)
    global_obj.query()                                      # one atomic call, every process
"""

from .aio import AsyncStore, connect_async
from .codecs import JSONCodec, SignedPickleCodec
from .counters import Counter
from .errors import (
    BackendUnavailableError,
    ClassMismatchError,
    ConfigurationError,
    CorruptStoreError,
    CounterOverflowError,
    InvalidNameError,
    InvalidURLError,
    LeaseExpiredError,
    OutcomeUnknownError,
    SerializationError,
    SharedStateError,
    SignatureError,
    StateLostError,
    StateTooLargeError,
    StoreTimeoutError,
    UnsupportedClassError,
)
from .locks import Lease, Lock
from .proxy import SharedObject
from .store import Store, connect

__version__ = "0.1.0"

__all__ = [
    "AsyncStore",
    "BackendUnavailableError",
    "ClassMismatchError",
    "ConfigurationError",
    "CorruptStoreError",
    "Counter",
    "CounterOverflowError",
    "InvalidNameError",
    "InvalidURLError",
    "JSONCodec",
    "Lease",
    "LeaseExpiredError",
    "Lock",
    "OutcomeUnknownError",
    "SerializationError",
    "SharedObject",
    "SharedStateError",
    "SignatureError",
    "SignedPickleCodec",
    "StateLostError",
    "StateTooLargeError",
    "Store",
    "StoreTimeoutError",
    "UnsupportedClassError",
    "connect",
    "connect_async",
]
