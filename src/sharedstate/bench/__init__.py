"""``sharedstate bench``: our operations beside the raw hand-written ones, in one run."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..backends import redact_url, split_url
from ..backends.base import scrub
from ..errors import InvalidURLError
from . import large_state
from .harness import Layout, Measurement, Ratio, as_json, run_benchmark


def _layouts(processes: int, threads: int, scheme: str) -> list[Layout]:
    """1 x 1 and P x T; once only when they are the same (``--processes 1 --threads 1``),
    which would otherwise measure everything twice."""
    if scheme == "memory":  # one process only: threads are its concurrency
        return list(dict.fromkeys([Layout(1, 1), Layout(1, threads)]))
    return list(dict.fromkeys([Layout(1, 1), Layout(processes, threads)]))


def _async_layouts(processes: int, tasks: int, scheme: str) -> list[Any]:
    from .async_harness import AsyncLayout

    if scheme == "memory":  # one process only: tasks are its concurrency
        return list(dict.fromkeys([AsyncLayout(1, 1), AsyncLayout(1, tasks)]))
    return list(dict.fromkeys([AsyncLayout(1, 1), AsyncLayout(processes, tasks)]))


@click.command("bench")
@click.option("--url", default=None, help="Store URL (default: a fresh SQLite file in a temp dir).")
@click.option("--seconds", default=1.5, show_default=True, help="Length of each measured window.")
@click.option("--rounds", default=3, show_default=True, help="Windows per operation; the median is reported.")
@click.option("--processes", default=4, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option("--async", "use_async", is_flag=True, help="Measure the async API (connect_async) against raw async operations.")
@click.option("--tasks", default=64, show_default=True, help="With --async: tasks per process.")
@click.option(
    "--state-size",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Also measure calls on an object whose state holds a dict of N short entries (~31 bytes "
    "of JSON each): bump() changes only an int beside it, touch(key) sets one random entry, "
    "replace() rebinds the whole dict. Reported as calls/s and microseconds per call in a table "
    "of their own (JSON: 'large_state'). 0: only the default one-int object.",
)
@click.option("--json", "as_json_output", is_flag=True, help="Print the results as JSON.")
def bench_command(
    url: str | None,
    seconds: float,
    rounds: int,
    processes: int,
    threads: int,
    use_async: bool,
    tasks: int,
    state_size: int,
    as_json_output: bool,
) -> None:
    """Throughput of object calls and counter increments, 1 process and P processes x T
    threads (with --async: P processes x T tasks on one event loop each), beside the raw
    hand-written operation of the same backend in the same run. With --state-size N, also
    the cost of a call on an object holding N entries, which the one-int object cannot show."""
    if state_size and use_async:
        raise click.UsageError("--state-size measures the sync API; leave out --async")
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="sharedstate-bench-") as scratch:
        url = url or f"sqlite:///{os.path.join(scratch, 'bench.db')}"
        try:
            scheme, _ = split_url(url)
        except InvalidURLError as exc:
            raise click.UsageError(str(exc)) from None
        layouts: list[Any] = _async_layouts(processes, tasks, scheme) if use_async else _layouts(processes, threads, scheme)
        windows = len(layouts) * rounds * (4 + (len(large_state.OPERATIONS) if state_size else 0))
        large: list[large_state.StateMeasurement] = []
        with console.status("benchmark") as status:
            done = [0]

            def progress(message: str) -> None:
                done[0] += 1
                status.update(f"[{done[0]}/~{windows}] {message}")

            def note(message: str) -> None:  # within a step: not counted as a window
                status.update(f"[{done[0]}/~{windows}] {message}")

            try:
                if use_async:
                    from .async_harness import run_async_benchmark

                    measurements, ratios = run_async_benchmark(url, layouts, seconds, rounds, progress)
                else:
                    measurements, ratios = run_benchmark(url, layouts, seconds, rounds, progress)
                    if state_size:
                        large = large_state.run_large_state(url, layouts, state_size, seconds, rounds, progress, note)
            except Exception as exc:  # the store, or the raw driver beside it: no traceback
                raise click.ClickException(
                    f"cannot bench {redact_url(url)}: {type(exc).__name__}: {scrub(str(exc), url)}"
                ) from None
    exact = all(m.exact for m in measurements) and all(m.exact is not False for m in large)
    if as_json_output:
        report = as_json(url, layouts, seconds, rounds, measurements, ratios)
        if state_size:
            report["large_state"] = large_state.as_json(state_size, large)
        click.echo(json.dumps(report, indent=2))
        return
    _print_tables(url, rounds, seconds, use_async, measurements, ratios)
    if state_size:
        _print_large_state(state_size, rounds, seconds, large)
    if not exact:
        sys.exit(1)


def _print_tables(url: str, rounds: int, seconds: float, use_async: bool, measurements: list[Measurement], ratios: list[Ratio]) -> None:
    out = Console()
    api = "async API" if use_async else "sync API"
    table = Table(title=f"sharedstate bench ({api}): {redact_url(url)} ({rounds} x {seconds:g} s windows, median)")
    for column in ("layout", "operation", "by", "ops/s", "exact"):
        table.add_column(column, justify="right" if column in ("ops/s",) else "left")
    for m in measurements:
        table.add_row(m.layout, m.operation, m.kind, f"{m.median:,.0f}", "yes" if m.exact else "NO")
    if use_async:
        from .raw_async import async_raw_class

        table.caption = "raw: " + async_raw_class(url.split("://", 1)[0]).description
    out.print(table)
    ratio_table = Table(title="ratio: sharedstate / raw (higher is better)")
    for column in ("layout", "sharedstate", "raw", "ratio", "target", "met"):
        ratio_table.add_column(column)
    for r in ratios:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        target = "" if r.target is None else f">= {r.target:g}x"
        ratio_table.add_row(r.layout, r.ours, r.raw, f"{r.ratio:.2f}x", target, met)
    out.print(ratio_table)


def _print_large_state(size: int, rounds: int, seconds: float, large: list[large_state.StateMeasurement]) -> None:
    """The calls on the big object, in a table of their own: there is no raw twin to
    divide by, so the figures are the calls' own."""
    table = Table(title=f"state of {size:,} entries (~{large_state.state_bytes(size) / 1000:,.0f} KB of JSON): per call, median of {rounds}")
    for column in ("layout", "operation", "calls/s", "µs per call", "exact"):
        table.add_column(column, justify="right" if column in ("calls/s", "µs per call") else "left")
    for m in large:
        exact = "" if m.exact is None else ("yes" if m.exact else "NO")
        table.add_row(m.layout, m.operation, f"{m.median_calls_per_second:,.{0 if m.median_calls_per_second >= 100 else 1}f}", f"{m.median_microseconds_per_call:,.0f}", exact)
    table.caption = (
        f"calls/s: all workers together; µs per call: the mean wait of one caller. "
        f"{seconds:g} s windows ({seconds * large_state.REPLACE_WINDOW_SHARE:g} s for replace()), each worker at least one call."
    )
    Console().print(table)
