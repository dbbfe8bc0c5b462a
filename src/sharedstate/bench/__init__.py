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
from .harness import Layout, Measurement, Ratio, as_json, run_benchmark


def _layouts(processes: int, threads: int, scheme: str) -> list[Layout]:
    if scheme == "memory":  # one process only: threads are its concurrency
        return [Layout(1, 1), Layout(1, threads)]
    return [Layout(1, 1), Layout(processes, threads)]


def _async_layouts(processes: int, tasks: int, scheme: str) -> list[Any]:
    from .async_harness import AsyncLayout

    if scheme == "memory":  # one process only: tasks are its concurrency
        return [AsyncLayout(1, 1), AsyncLayout(1, tasks)]
    return [AsyncLayout(1, 1), AsyncLayout(processes, tasks)]


@click.command("bench")
@click.option("--url", default=None, help="Store URL (default: a fresh SQLite file in a temp dir).")
@click.option("--seconds", default=1.5, show_default=True, help="Length of each measured window.")
@click.option("--rounds", default=3, show_default=True, help="Windows per operation; the median is reported.")
@click.option("--processes", default=4, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option("--async", "use_async", is_flag=True, help="Measure the async API (connect_async) against raw async operations.")
@click.option("--tasks", default=64, show_default=True, help="With --async: tasks per process.")
@click.option("--json", "as_json_output", is_flag=True, help="Print the results as JSON.")
def bench_command(
    url: str | None,
    seconds: float,
    rounds: int,
    processes: int,
    threads: int,
    use_async: bool,
    tasks: int,
    as_json_output: bool,
) -> None:
    """Throughput of object calls and counter increments, 1 process and P processes x T
    threads (with --async: P processes x T tasks on one event loop each), beside the raw
    hand-written operation of the same backend in the same run."""
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="sharedstate-bench-") as scratch:
        url = url or f"sqlite:///{os.path.join(scratch, 'bench.db')}"
        try:
            scheme, _ = split_url(url)
        except InvalidURLError as exc:
            raise click.UsageError(str(exc)) from None
        layouts: list[Any] = _async_layouts(processes, tasks, scheme) if use_async else _layouts(processes, threads, scheme)
        windows = len(layouts) * rounds * 4
        with console.status("benchmark") as status:
            done = [0]

            def progress(message: str) -> None:
                done[0] += 1
                status.update(f"[{done[0]}/~{windows}] {message}")

            try:
                if use_async:
                    from .async_harness import run_async_benchmark

                    measurements, ratios = run_async_benchmark(url, layouts, seconds, rounds, progress)
                else:
                    measurements, ratios = run_benchmark(url, layouts, seconds, rounds, progress)
            except Exception as exc:  # the store, or the raw driver beside it: no traceback
                raise click.ClickException(
                    f"cannot bench {redact_url(url)}: {type(exc).__name__}: {scrub(str(exc), url)}"
                ) from None
    if as_json_output:
        click.echo(json.dumps(as_json(url, layouts, seconds, rounds, measurements, ratios), indent=2))
        return
    _print_tables(url, rounds, seconds, use_async, measurements, ratios)
    if not all(m.exact for m in measurements):
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
