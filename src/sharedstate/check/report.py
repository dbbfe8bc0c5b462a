"""The HTML report: a timeline of the operations, one lane per client, the violation marked.

One self-contained file (inline CSS, JS and SVG, the history as embedded JSON), so it
opens from disk in any browser with no network, and can be attached to a bug report.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import Model, show

if TYPE_CHECKING:
    from . import CheckResult


def _stats_rows(result: CheckResult) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("operations", len(result.operations)),
        ("clients", len({op.process for op in result.operations})),
        ("keys checked apart", result.partitions),
        ("check time", f"{result.elapsed:.3f} s"),
    ]
    c = result.counter
    if c is not None:
        rows += [
            ("calls that returned", c.completed),
            ("calls that never returned", c.pending),
            ("unique numbers", c.unique),
            ("numbers returned more than once", c.duplicated_values),
            ("skipped numbers", c.skipped),
            ("calls out of real-time order", c.order_violations),
        ]
    if result.unknown_keys:
        rows.append(("keys not decided in time", ", ".join(map(repr, result.unknown_keys[:10]))))
    return rows


def render_report(result: CheckResult, title: str = "history") -> str:
    """The report as an HTML string."""
    model = Model()  # only its describe_op: the same words for every model
    failing = set()
    if result.violation is not None:
        failing = {id(op) for op in result.violation.operations}
        failing_keys = {(op.process, op.call, op.op) for op in result.violation.operations}
    else:
        failing_keys = set()
    ops = sorted(result.operations, key=lambda o: o.call)
    t0 = min((op.call for op in ops), default=0.0)
    t1 = max([op.ret for op in ops if op.ret is not None] + [op.call for op in ops] + [t0 + 1e-6])
    marker = None
    if result.violation is not None and result.violation.operations:
        marker = max(op.call for op in result.violation.operations)
    data = {
        "verdict": result.verdict,
        "meta": (
            f"{title} \u2014 model {result.model}, {len(ops)} operations, "
            f"checked in {result.elapsed:.3f} s"
        ),
        "sentences": result.violation.sentences if result.violation else [],
        "stats": _stats_rows(result),
        "t0": t0,
        "t1": t1,
        "marker": marker,
        "ops": [
            {
                "id": i,
                "client": str(op.process),
                "call": op.call,
                "ret": op.ret,
                "pending": op.pending,
                "text": model.describe_op(op),
                "result": (f"raised {op.error}" if op.error else show(op.result)),
                "failing": id(op) in failing or (op.process, op.call, op.op) in failing_keys,
            }
            for i, op in enumerate(ops)
        ],
    }
    payload = json.dumps(data).replace("</", "<\\/")
    template = resources.files("sharedstate.check").joinpath("report.html").read_text("utf-8")
    before, _, after = template.partition("__DATA__")
    return before.replace("__TITLE__", html.escape(title)) + payload + after


def write_report(result: CheckResult, path: str | Path, title: str = "history") -> Path:
    """Write the report to ``path`` and return it."""
    path = Path(path)
    path.write_text(render_report(result, title), encoding="utf-8")
    return path
