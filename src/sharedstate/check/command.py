"""``sharedstate check``: record a concurrent history (or read one) and check it.

Three ways in, one verdict out:

* ``sharedstate check URL``: hammer an HTTP endpoint that returns a number with N
  concurrent clients, and check the numbers as a counter's;
* ``sharedstate check --history FILE --model MODEL``: check a recorded history (our JSON
  Lines, or ``--format jepsen`` / ``--format porcupine``);
* ``sharedstate check --store URL --object MODULE:CLASS``: run random methods of a shared
  object from several processes and threads, and check them against the class itself.

Exit status: 0 linearizable, 1 violation, 2 unknown within the time budget (click also
uses 2 for a usage error), 3 for a history or target that cannot be checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..backends.base import redact_url
from . import CheckResult, HistoryError, check_history, write_history
from .formats import FORMATS, read_history_as
from .history import Operation
from .model import Model
from .models import CounterModel, model_from_spec, model_spec

COLOURS = {"linearizable": "green", "violation": "red", "unknown": "yellow"}


class CheckInputError(click.ClickException):
    """A history, URL or class that cannot be checked: exit 3, apart from the verdicts."""

    exit_code = 3


@click.command("check")
@click.argument("url", required=False)
@click.option("--history", "history_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Check this history file (see --format) instead of recording one.")
@click.option("--format", "history_format", type=click.Choice(FORMATS), default="jsonl",
              show_default=True,
              help="The --history file's format: ours, a Jepsen/Knossos EDN history, or "
                   "Porcupine's JSON operation log.")
@click.option("--model", default=None,
              help="counter[:START], register[:START], kv[:START] or object:MODULE:CLASS "
                   "(with --history; default: counter, or the --format's own model).")
@click.option("--store", "store_url", help="Store URL for --object: run a workload on a shared object.")
@click.option("--object", "object_class", metavar="MODULE:CLASS",
              help="The class to share and check (with --store).")
@click.option("--clients", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="Concurrent HTTP clients.")
@click.option("--requests", "requests_total", default=200, show_default=True,
              type=click.IntRange(1), help="Total HTTP requests.")
@click.option("--regex", help="Regex picking the number from the body (first group, else the match).")
@click.option("--json-path", help="JSON path picking the number from the body, e.g. $.count.")
@click.option("--method", default="GET", show_default=True, help="HTTP method.")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds before an HTTP request counts as never answered.")
@click.option("--start", default="auto", show_default=True,
              help="The endpoint's counter value before the run; auto: one below the lowest seen.")
@click.option("--processes", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Processes for --object.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Threads per process for --object.")
@click.option("--calls", default=25, show_default=True, type=click.IntRange(1),
              help="Calls per thread for --object.")
@click.option("--seed", default=0, show_default=True, type=int, help="Workload seed for --object.")
@click.option("--time-budget", default=60.0, show_default=True, type=float,
              help="Seconds the checker may search before answering unknown.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an HTML report (a timeline, one lane per client) here.")
@click.option("--save-history", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the recorded history as JSON Lines here.")
@click.pass_context
def check_command(
    ctx: click.Context, url: str | None, history_file: Path | None, history_format: str,
    model: str | None,
    store_url: str | None, object_class: str | None, clients: int, requests_total: int,
    regex: str | None, json_path: str | None, method: str, timeout: float, start: str,
    processes: int, threads: int, calls: int, seed: int, time_budget: float,
    report: Path | None, save_history: Path | None,
) -> None:
    """Record a concurrent history and check it for linearizability.

    \b
      sharedstate check http://127.0.0.1:8000/ --clients 50 --requests 500
      sharedstate check --history calls.jsonl --model kv
      sharedstate check --history history.edn --format jepsen
      sharedstate check --store sqlite:///state.db --object myapp:Account
    """
    out = Console()
    err = Console(stderr=True)
    modes = [url is not None, history_file is not None, store_url is not None]
    if sum(modes) != 1:
        raise click.UsageError("give exactly one of: URL, --history FILE, --store URL --object CLASS")
    if (store_url is None) != (object_class is None):
        raise click.UsageError("--store and --object go together")
    if regex and json_path:
        raise click.UsageError("give --regex or --json-path, not both")
    try:
        if url is not None:
            ops, spec, title = _record_http(
                url, clients, requests_total, regex, json_path, method, timeout, start, err, out
            )
        elif history_file is not None:
            ops, suggested = read_history_as(history_file, history_format)
            spec = model_from_spec(model or suggested or "counter")
            title = str(history_file)
        else:
            assert store_url is not None and object_class is not None
            ops, spec, title = _record_object(
                store_url, object_class, processes, threads, calls, seed, err
            )
        if save_history is not None and history_file is None:
            write_history(ops, save_history)
        with err.status("checking linearizability..."):
            result = check_history(ops, spec, time_budget=time_budget)
    except HistoryError as exc:
        raise CheckInputError(str(exc)) from None
    _print_result(out, result, title)
    if save_history is not None and history_file is None:
        out.print(f"history saved to {save_history}; re-check with: sharedstate check "
                  f"--history {save_history} --model {model_spec(spec)}")
    if report is not None:
        from .report import write_report

        write_report(result, report, title)
        out.print(f"report written to {report}")
    ctx.exit(result.exit_code)


def _record_http(
    url: str, clients: int, total: int, regex: str | None, json_path: str | None,
    method: str, timeout: float, start: str, err: Console, out: Console,
) -> tuple[list[Operation], Model, str]:
    from .record import hammer, json_path_extractor, regex_extractor

    if not url.startswith(("http://", "https://")):
        raise HistoryError(f"not an http(s) URL: {url!r}")
    extract = json_path_extractor(json_path) if json_path else regex_extractor(regex or r"-?\d+")
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:
        task = progress.add_task(f"{clients} clients", total=total)
        ops, stats = hammer(
            url, clients, total, extract, timeout, method.upper(),
            progress=lambda: progress.advance(task),
        )
    out.print(f"{stats.requests} requests from {clients} clients in {stats.seconds:.2f} s"
              + (f"; {stats.errors} failed" if stats.errors else "")
              + (f"; {stats.unreadable} without a number" if stats.unreadable else ""))
    if stats.first_error:
        out.print(f"  first problem: {stats.first_error}")
    values = [op.result for op in ops if not op.pending]
    if not values:
        raise HistoryError(f"no request to {redact_url(url)} returned a number ({stats.first_error})")
    if start == "auto":
        initial = min(values) - 1
    else:
        try:
            initial = int(start)
        except ValueError:
            raise HistoryError(f"--start must be an integer or auto, got {start!r}") from None
    return ops, CounterModel(initial), redact_url(url)


def _record_object(
    store_url: str, object_class: str, processes: int, threads: int, calls: int, seed: int,
    err: Console,
) -> tuple[list[Operation], Model, str]:
    from .record import run_object_workload

    with err.status(f"{processes} processes x {threads} threads x {calls} calls on {object_class}..."):
        ops = run_object_workload(store_url, object_class, processes, threads, calls, seed)
    title = f"{object_class} on {redact_url(store_url)}"
    return ops, model_from_spec(f"object:{object_class}"), title


def _print_result(out: Console, result: CheckResult, title: str) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("history", title)
    table.add_row("model", result.model)
    table.add_row("operations", str(len(result.operations)))
    c = result.counter
    if c is not None:
        table.add_row("requests", str(c.requests))
        table.add_row("unique values", str(c.unique))
        table.add_row("duplicates", f"{c.duplicated_values} numbers returned more than once "
                      f"({c.duplicate_responses} extra responses)")
        table.add_row("skipped numbers", str(c.skipped)
                      + (f" ({c.pending} calls never returned and may explain some)" if c.pending else ""))
        table.add_row("real-time order violations", str(c.order_violations))
    if result.partitions > 1:
        table.add_row("keys", str(result.partitions))
    table.add_row("checked in", f"{result.elapsed:.3f} s")
    colour = COLOURS[result.verdict]
    table.add_row("verdict", f"[bold {colour}]{result.verdict.upper()}[/]")
    out.print(table)
    if result.violation is not None:
        for sentence in result.violation.sentences:
            out.print(f"  [red]\u2022[/] {sentence}", highlight=False)
    if result.unknown_keys:
        out.print(f"  [yellow]not decided within the time budget:[/] "
                  f"{len(result.unknown_keys)} key(s); raise --time-budget")


def main() -> None:  # pragma: no cover - `python -m sharedstate.check.command`
    check_command(sys.argv[1:])
