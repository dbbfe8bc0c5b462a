"""Reading a user's class: which methods only read, and which act as a register.

The search is fast on the built-in models because it knows two things about their
operations: a read never changes the state (so it can be taken greedily), and a
register only changes by whole writes and appends (so a read's result bounds which
orders can still lead to it: the lookahead). For an ``object:`` model, this module
finds the same facts in the class's source, conservatively:

* **pure**: no assignment, deletion or augmented assignment through ``self`` (or a
  local bound to anything reached from ``self``), no method call on such a value
  but known read-only ones (``get``, ``count``, ``copy``, ...), no such value passed
  to any function but known copying builtins (``len``, ``list``, ``sorted``, ...),
  no ``global``/``nonlocal``, no ``yield``, no nested function using ``self``;
* **read** of attribute ``a``: pure, and its body is ``return self.a`` (or
  ``list(self.a)``, ``tuple(self.a)``, ``self.a.copy()``);
* **write** of ``a`` from argument k: the body is ``self.a = arg``;
* **append** to ``a`` of argument k: ``self.a.append(arg)``, ``self.a.extend(arg)``,
  ``self.a += arg``, ``self.a = self.a + arg`` or ``self.a = (self.a or "") + arg``.

Anything else gets no role and no shortcut: the search is then plain (still
correct). The claims are audited on every transition the search computes (see
object.py); a class with descriptors or attribute hooks gets no roles at all.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

PURE = "pure"
READ = "read"
WRITE = "write"
APPEND = "append"

_READONLY_METHODS = frozenset({
    "get", "count", "index", "copy", "keys", "values", "items", "startswith", "endswith",
    "find", "rfind", "upper", "lower", "strip", "lstrip", "rstrip", "split", "rsplit",
    "join", "format", "isdigit", "isalpha", "issubset", "issuperset", "isdisjoint",
    "union", "intersection", "difference", "symmetric_difference", "encode", "decode",
    "replace", "partition", "rpartition", "hex", "isoformat", "total_seconds", "bit_length",
})
_COPYING_BUILTINS = frozenset({
    "len", "list", "tuple", "dict", "set", "frozenset", "sorted", "sum", "min", "max", "any",
    "all", "str", "repr", "int", "float", "bool", "abs", "round", "isinstance", "enumerate",
    "zip", "reversed", "range", "hash", "format", "divmod", "ord", "chr", "print",
})
_HOOKS = ("__setattr__", "__getattr__", "__getattribute__", "__delattr__")


@dataclass(frozen=True)
class Role:
    """What a method does to the object: ``kind`` (pure, read, write or append), the
    attribute it reads or changes, and which positional argument it writes or appends."""

    kind: str
    attribute: str | None = None
    arg: int = 0
    #: how: a reader returns the attribute itself ("") or "list", "tuple", "copy" of it;
    #: an appender is "add" (``a + arg``, ``a += arg``), "or-str" (``(a or "") + arg``),
    #: "or-list" (``(a or []) + arg``), "append" or "extend"
    via: str = ""
    #: how many arguments it takes (a call with another number raises); -1: it has defaults
    arity: int = -1


def classify(cls: type) -> dict[str, Role]:
    """The roles of ``cls``'s public methods whose source says them; the rest are left out."""
    for klass in cls.__mro__[:-1]:
        if any(hook in vars(klass) for hook in _HOOKS):
            return {}
        for name, member in vars(klass).items():
            if hasattr(member, "__get__") and not inspect.isfunction(member) and not isinstance(
                member, (staticmethod, classmethod)
            ) and not name.startswith("__"):
                return {}  # a property or descriptor: attribute access runs code
    roles: dict[str, Role] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        function = inspect.getattr_static(cls, name, None)
        if not inspect.isfunction(function):
            continue
        role = _role(function)
        if role is not None:
            roles[name] = role
    return roles


def _role(function: Any) -> Role | None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return None
    args = node.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or not args.args:
        return None
    me = args.args[0].arg
    params = [a.arg for a in args.args[1:]]
    arity = -1 if args.defaults else len(params)
    body = [s for s in node.body if not _is_docstring(s)]
    if _is_pure(node, me):
        role = _reader(body, me) or Role(PURE)
        return replace(role, arity=arity)
    while body and isinstance(body[-1], ast.Return) and (
        body[-1].value is None or isinstance(body[-1].value, ast.Constant) and body[-1].value.value is None
    ):
        body = body[:-1]
    if len(body) != 1:
        return None
    changer = _changer(body[0], me, params)
    return replace(changer, arity=arity) if changer is not None else None


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
        stmt.value.value, str
    )


def _self_attr(node: ast.AST, me: str) -> str | None:
    """``a`` when ``node`` is ``self.a``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == me:
        return node.attr
    return None


def _reader(body: list[ast.stmt], me: str) -> Role | None:
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    value = body[0].value
    name = _self_attr(value, me)
    via = ""
    if name is None and isinstance(value, ast.Call) and not value.keywords:
        func = value.func
        if isinstance(func, ast.Name) and func.id in ("list", "tuple") and len(value.args) == 1:
            name, via = _self_attr(value.args[0], me), func.id
        elif isinstance(func, ast.Attribute) and func.attr == "copy" and not value.args:
            name, via = _self_attr(func.value, me), "copy"
    return Role(READ, name, 0, via) if name is not None else None


def _changer(stmt: ast.stmt, me: str, params: list[str]) -> Role | None:
    def param(node: ast.AST) -> int | None:
        if isinstance(node, ast.Name) and node.id in params:
            return params.index(node.id)
        return None

    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        name = _self_attr(stmt.targets[0], me)
        if name is None:
            return None
        k = param(stmt.value)
        if k is not None:
            return Role(WRITE, name, k)
        value = stmt.value
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            k = param(value.right)
            left = value.left
            via = "add"
            if isinstance(left, ast.BoolOp) and isinstance(left.op, ast.Or) and len(left.values) == 2:
                empty = left.values[1]
                if isinstance(empty, ast.Constant) and empty.value == "":
                    via = "or-str"
                elif isinstance(empty, ast.List) and not empty.elts:
                    via = "or-list"
                else:
                    return None
                left = left.values[0]
            if k is not None and _self_attr(left, me) == name:
                return Role(APPEND, name, k, via)
        return None
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add):
        name = _self_attr(stmt.target, me)
        k = param(stmt.value)
        return Role(APPEND, name, k, "add") if name is not None and k is not None else None
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        func = call.func
        if (isinstance(func, ast.Attribute) and func.attr in ("append", "extend")
                and len(call.args) == 1 and not call.keywords):
            name = _self_attr(func.value, me)
            k = param(call.args[0])
            if name is not None and k is not None:
                return Role(APPEND, name, k, func.attr)
    return None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _bindings(func: ast.FunctionDef) -> list[tuple[Sequence[ast.AST], ast.AST]]:
    """(targets, value) of every binding in the function: taint flows from value to targets."""
    found: list[tuple[Sequence[ast.AST], ast.AST]] = []
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            found.append((node.targets, node.value))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            found.append(([node.target], node.value))
        elif isinstance(node, ast.NamedExpr):
            found.append(([node.target], node.value))
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            found.append(([node.target], node.iter))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found.append(([node.optional_vars], node.context_expr))
    return found


def _is_pure(func: ast.FunctionDef, me: str) -> bool:
    """True when nothing in ``func`` can change what ``self`` reaches (see the module doc)."""
    tainted = {me, "super"}  # super() reaches the same object
    bindings = _bindings(func)
    grew = True
    while grew:
        grew = False
        for bound, value in bindings:
            if _names(value) & tainted:
                for target in bound:
                    new = _names(target) - tainted
                    if new:
                        tainted |= new
                        grew = True
    for node in ast.walk(func):
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await)):
            return False
        if isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node is not func and _names(node) & tainted:
                return False
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.AugAssign):
            if _names(node.target) & tainted:  # x += [1] on a list reached from self
                return False
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)) and _names(part) & tainted:
                    return False
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and _names(f.value) & tainted and (
                f.attr not in _READONLY_METHODS
            ):
                return False
            safe = isinstance(f, ast.Name) and f.id in _COPYING_BUILTINS
            passed = [*node.args, *(k.value for k in node.keywords)]
            if not safe and any(_names(a) & tainted for a in passed):
                return False
    return True
