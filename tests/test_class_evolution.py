"""Classes change between deploys, on every backend: attributes added (in ``__init__``, as a
dataclass field with a default or default_factory, in a nested dataclass), removed (top
level and nested), ``__getstate__``/``__setstate__`` in both codecs, old and new workers at
once; and state written by ``python app.py`` (classes in ``__main__``) read under another
module name and back, or by a tool without the classes at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import uuid
from pathlib import Path

import pytest

import sharedstate
from sharedstate import classrefs

SECRET = "evolution-test-key"

V1 = """
import dataclasses, enum

class Color(enum.Enum):
    RED = 1
    BLUE = 2

@dataclasses.dataclass
class Line:
    sku: str
    qty: int = 1
    legacy: str = "old"

@dataclasses.dataclass
class Cart:
    lines: list = dataclasses.field(default_factory=list)
    owner: str = "nobody"
    color: Color = Color.RED

    def add(self, sku):
        self.lines.append(Line(sku))
        return len(self.lines)

class Plain:
    def __init__(self, start=0):
        self.n = start

    def inc(self):
        self.n += 1
        return self.n
"""

V2 = """
import dataclasses, enum

class Color(enum.Enum):
    RED = 1
    BLUE = 2

@dataclasses.dataclass
class Line:
    sku: str
    qty: int = 1
    notes: list = dataclasses.field(default_factory=list)

@dataclasses.dataclass
class Cart:
    lines: list = dataclasses.field(default_factory=list)
    coupons: list = dataclasses.field(default_factory=list)
    discount: int = 5
    color: Color = Color.RED

    def add(self, sku):
        self.lines.append(Line(sku))
        return len(self.lines)

    def coupon(self, code):
        self.coupons.append(code)
        self.lines[0].notes.append(code)
        return len(self.coupons)

class Plain:
    def __init__(self, start=0):
        self.n = start
        self.tags = ["new"]

    def inc(self):
        self.n += 1
        return self.n

    def tag(self, tag):
        self.tags.append(tag)
        return list(self.tags)
"""

V3_SETSTATE = """
import threading

class Plain:
    '''Renames n to count; keeps a lock and a cache out of the stored state.'''

    def __init__(self, start=0):
        self.count = start
        self.lock = threading.Lock()
        self.cache = {}

    def __getstate__(self):
        return {"count": self.count}

    def __setstate__(self, state):
        self.count = state["count"] if "count" in state else state["n"]
        self.lock = threading.Lock()
        self.cache = {}

    def inc(self):
        with self.lock:
            self.count += 1
            self.cache[self.count] = True
            return self.count
"""


def load(module_name: str, source: str) -> types.ModuleType:
    """A module of that name made from ``source``: a new version of the same classes, as
    a deploy brings (the class paths stay the same)."""
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    code = compile(textwrap.dedent(source), f"<{module_name}>", "exec", dont_inherit=True)
    exec(code, module.__dict__)  # noqa: S102
    classrefs._FOUND.clear()  # a new process would find the new classes
    return module


@pytest.fixture
def versions():
    name = f"evolving_{uuid.uuid4().hex[:8]}"
    yield lambda source: load(name, source)
    sys.modules.pop(name, None)


@pytest.fixture(params=["json", "pickle"])
def codec(request):
    return request.param


def connect(url, codec="json"):
    return sharedstate.connect(url, codec=codec, secret_key=SECRET if codec == "pickle" else None)


def test_attribute_added_in_init_takes_the_factorys_value(store_url, versions, codec):
    v1 = versions(V1)
    with connect(store_url, codec) as old:
        obj = old.object("p", v1.Plain, 10)
        assert obj.inc() == 11
    v2 = versions(V2)
    with connect(store_url, codec) as new:
        obj = new.object("p", v2.Plain, 10)
        assert obj.tags == ["new"]  # a read, before any call
        assert obj.tag("x") == ["new", "x"]  # never AttributeError
        assert obj.inc() == 12  # the stored state is kept
    with connect(store_url, codec) as again:
        assert again.object("p", v2.Plain, 10).tags == ["new", "x"]


def test_dataclass_fields_added_and_removed_top_level_and_nested(store_url, versions, codec):
    v1 = versions(V1)
    with connect(store_url, codec) as old:
        cart = old.object("cart", v1.Cart)
        cart.add("apple")
        cart.color = v1.Color.BLUE
    v2 = versions(V2)
    with connect(store_url, codec) as new:
        cart = new.object("cart", v2.Cart)
        assert cart.coupons == [] and cart.discount == 5  # default_factory and default
        assert cart.coupon("SAVE") == 1  # nested: notes from its default_factory
        line = cart.lines[0]
        assert line == v2.Line("apple", 1, ["SAVE"])
        assert not hasattr(line, "legacy")  # a nested field the class no longer has
        assert cart.color is v2.Color.BLUE
        assert cart.add("pear") == 2


def test_rolling_deploy_old_worker_keeps_what_new_worker_stored(store_url, versions, codec):
    """Old and new workers at once: the old one's writes never erase an attribute only the
    new class has (it is kept in the instance, unused); see the README."""
    v1 = versions(V1)
    old_class = v1.Plain
    with connect(store_url, codec) as old:
        old_obj = old.object("p", old_class)
        old_obj.inc()
        v2 = versions(V2)
        with connect(store_url, codec) as new:
            new_obj = new.object("p", v2.Plain)
            assert new_obj.tag("from-new") == ["new", "from-new"]
            assert old_obj.inc() == 2  # the old worker writes the whole state...
            assert new_obj.tags == ["new", "from-new"]  # ...and the new attribute survives
            assert new_obj.inc() == 3


def test_getstate_setstate_decide_what_is_stored_and_migrate(store_url, versions, codec):
    v1 = versions(V1)
    with connect(store_url, codec) as old:
        old.object("p", v1.Plain, 4).inc()
    v3 = versions(V3_SETSTATE)
    with connect(store_url, codec) as new:
        obj = new.object("p", v3.Plain)
        assert obj.inc() == 6  # migrated from "n"; the lock is no state of the store's
        state = new.inspect("p")["state"]
        assert state == {"count": 6}
    with connect(store_url, codec) as again:
        assert again.object("p", v3.Plain).count == 6


SCRIPT = """
import dataclasses, enum, sys
import sharedstate

class Color(enum.Enum):
    RED = 1
    BLUE = 2

@dataclasses.dataclass
class Line:
    sku: str
    color: Color = Color.RED

class Order:
    def __init__(self):
        self.lines = []

    def add(self, sku):
        self.lines.append(Line(sku, Color.BLUE))
        return len(self.lines)

    def describe(self):
        return [(line.sku, line.color.name) for line in self.lines]

if __name__ == "__main__":
    url, codec, action = sys.argv[1:4]
    with sharedstate.connect(url, codec=codec, secret_key="{secret}" if codec == "pickle" else None) as store:
        order = store.object("order", Order)
        print(order.add("from-main") if action == "add" else order.describe())
"""


def run_script(path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=60, cwd=path.parent
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_state_written_as_main_reads_under_the_module_name_and_back(
    multiprocess_url, tmp_path, monkeypatch, codec
):
    module_name = f"zooapp_{uuid.uuid4().hex[:8]}"
    script = tmp_path / f"{module_name}.py"
    script.write_text(SCRIPT.replace("{secret}", SECRET))
    assert run_script(script, multiprocess_url, codec, "add") == "1"  # python app.py
    monkeypatch.syspath_prepend(str(tmp_path))
    classrefs._FOUND.clear()
    app = __import__(module_name)  # gunicorn app:app names the module "app"
    try:
        with connect(multiprocess_url, codec) as store:
            order = store.object("order", app.Order)
            assert order.describe() == [("from-main", "BLUE")]
            assert order.add("from-module") == 2
        # and back: the script reads what the module wrote
        assert run_script(script, multiprocess_url, codec, "show") == str(
            [("from-main", "BLUE"), ("from-module", "BLUE")]
        )
    finally:
        sys.modules.pop(module_name, None)


def test_inspect_and_flask_show_read_state_without_its_classes(multiprocess_url, tmp_path, codec):
    script = tmp_path / f"zooapp_{uuid.uuid4().hex[:8]}.py"
    script.write_text(SCRIPT.replace("{secret}", SECRET))
    run_script(script, multiprocess_url, codec, "add")
    with connect(multiprocess_url, codec) as store:  # this process has no Line, no Color
        inspected = store.inspect("order")
    assert inspected["class"] == "__main__:Order"
    (line,) = inspected["state"]["lines"]
    assert repr(line) == "__main__:Line(sku='from-main', color=__main__:Color(2))"

    flask = pytest.importorskip("flask")
    from sharedstate.flask import SharedState, sharedstate_cli

    app = flask.Flask("tool", instance_path=str(tmp_path))
    app.config["SHAREDSTATE_URL"] = multiprocess_url
    app.config["SHAREDSTATE_CODEC"] = codec
    app.config["SHAREDSTATE_SECRET_KEY"] = SECRET
    SharedState(app)
    runner = app.test_cli_runner()
    try:
        for args in (["show"], ["show", "order"]):
            result = runner.invoke(sharedstate_cli, args)
            assert result.exit_code == 0, result.output
            assert "Traceback" not in result.output
            assert "__main__:Line(sku='from-main'" in result.output
    finally:  # no connection of this process left open for a later test's fork to inherit
        app.extensions["sharedstate"].close()
