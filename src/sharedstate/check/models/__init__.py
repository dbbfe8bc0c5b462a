"""The models ``sharedstate check`` knows, by the names the command line uses."""

from __future__ import annotations

import json
from typing import Any

from ..history import HistoryError
from ..model import ILLEGAL, UNKNOWN, Model, Step, freeze, normalize, show, thaw
from .counter import CounterModel
from .counter_direct import CounterStats, DirectVerdict, check_counter
from .object import ObjectModel, load_class
from .register import KVModel, RegisterModel

__all__ = [
    "ILLEGAL", "UNKNOWN", "CounterModel", "CounterStats", "DirectVerdict", "KVModel", "Model",
    "ObjectModel", "RegisterModel", "Step", "check_counter", "freeze", "load_class",
    "model_from_spec", "model_spec", "normalize", "show", "thaw",
]


def model_from_spec(spec: str | Model) -> Model:
    """``counter[:START]``, ``register[:START]``, ``kv[:START]`` or ``object:MODULE:CLASS``.

    A register's or key's START is JSON (``kv:""`` starts every key at the empty
    string, as Porcupine's kv model does; ``register:0``; ``kv:null`` is the default);
    text that is not JSON is taken as a string, and ``kv:`` alone means ``""``.
    """
    if isinstance(spec, Model):
        return spec
    name, colon, rest = spec.partition(":")
    if name == "counter":
        if not rest:
            return CounterModel()
        try:
            return CounterModel(int(rest))
        except ValueError:
            raise HistoryError(f"counter:START needs an integer start, got {rest!r}") from None
    if name in ("register", "kv"):
        cls = RegisterModel if name == "register" else KVModel
        return cls(_start(rest)) if colon else cls()
    if name == "object" and rest:
        return ObjectModel(load_class(rest))
    raise HistoryError(
        f"unknown model {spec!r}: use counter[:START], register[:START], kv[:START] "
        f"or object:MODULE:CLASS"
    )


def _start(text: str) -> Any:
    try:
        return json.loads(text) if text else ""
    except ValueError:
        return text


def model_spec(model: Model) -> str:
    """The ``--model`` argument that names ``model`` again (for "re-check with" hints)."""
    initial = getattr(model, "initial", None)
    if isinstance(model, CounterModel):
        return f"counter:{initial}" if initial else "counter"
    if isinstance(model, RegisterModel) and initial is not None:
        return f"{model.name}:{json.dumps(initial)}"
    return model.name
