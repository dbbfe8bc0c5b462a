"""The models ``sharedstate check`` knows, by the names the command line uses."""

from __future__ import annotations

from ..history import HistoryError
from ..model import ILLEGAL, UNKNOWN, Model, Step, freeze, normalize, show, thaw
from .counter import CounterModel
from .counter_direct import CounterStats, DirectVerdict, check_counter
from .object import ObjectModel, load_class
from .register import KVModel, RegisterModel

__all__ = [
    "ILLEGAL", "UNKNOWN", "CounterModel", "CounterStats", "DirectVerdict", "KVModel", "Model",
    "ObjectModel", "RegisterModel", "Step", "check_counter", "freeze", "load_class",
    "model_from_spec", "normalize", "show", "thaw",
]


def model_from_spec(spec: str | Model) -> Model:
    """``counter``, ``counter:START``, ``register``, ``kv`` or ``object:MODULE:CLASS``."""
    if isinstance(spec, Model):
        return spec
    name, _, rest = spec.partition(":")
    if name == "counter":
        if not rest:
            return CounterModel()
        try:
            return CounterModel(int(rest))
        except ValueError:
            raise HistoryError(f"counter:START needs an integer start, got {rest!r}") from None
    if name == "register" and not rest:
        return RegisterModel()
    if name == "kv" and not rest:
        return KVModel()
    if name == "object" and rest:
        return ObjectModel(load_class(rest))
    raise HistoryError(
        f"unknown model {spec!r}: use counter, counter:START, register, kv or object:MODULE:CLASS"
    )
