"""The results of ``sharedstate demo``: what the clients of one row saw, judged (exact,
per-process copies, lost updates), and the table and notes printed from them.

Apart from the run so that the judgement can be tested on rows made by hand, and so that
other runners of bursts (the ASGI and Quart tests, ``sharedstate check``'s HTTP test) judge
what their clients saw by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backends import redact_url
from .demo_asgi import asgi_notes
from .demo_modes import ASGI_MODES

if TYPE_CHECKING:
    from .demo import Settings


@dataclass
class Row:
    """What the clients of one mode and variant saw, over every round."""

    mode: str
    variant: str
    #: (number, pid that served it) of each successful response
    seen: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: the answered calls, timed, as a counter history (``sharedstate check``'s Operation)
    calls: list[Any] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.seen) + len(self.errors)

    @property
    def values(self) -> list[int]:
        return [value for value, _ in self.seen]

    @property
    def unique(self) -> int:
        return len(set(self.values))

    @property
    def duplicates(self) -> int:
        """Responses whose number another response also got."""
        return len(self.seen) - self.unique

    @property
    def skipped(self) -> int:
        """Numbers of 1..requests that no client got."""
        return len(set(range(1, self.requests + 1)) - set(self.values))

    @property
    def repeated_in_one_process(self) -> int:
        """Duplicates handed out by one process: lost updates between its threads."""
        by_pid: dict[int, list[int]] = {}
        for value, pid in self.seen:
            by_pid.setdefault(pid, []).append(value)
        return sum(len(values) - len(set(values)) for values in by_pid.values())

    @property
    def repeated_across_processes(self) -> int:
        """Duplicates not explained by one process: each process counted on its own copy."""
        return self.duplicates - self.repeated_in_one_process

    @property
    def processes(self) -> int:
        return len({pid for _, pid in self.seen})

    @property
    def exact(self) -> bool:
        """Each of 1..N once, in an order a counter could have given them in real time
        (the check's counter procedure on the timed calls, or on the numbers alone)."""
        if self.errors or sorted(self.values) != list(range(1, self.requests + 1)):
            return False
        from .check import Operation
        from .check.models import check_counter

        calls = self.calls or [Operation(0, 0.0, 1.0, "incr", (), v) for v in self.values]
        verdict = check_counter(calls, 0)
        return verdict is not None and verdict.ok

    @property
    def verdict(self) -> str:
        if self.exact:
            return "exact"
        found = []
        if self.errors:
            found.append(f"{len(self.errors)} failed")
        if self.repeated_across_processes:
            found.append("per-process copies")
        if self.repeated_in_one_process:
            found.append("lost updates")
        if not found and self.skipped:
            found.append("numbers out of range")
        return ", ".join(found)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "variant": self.variant,
            "requests": self.requests,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "repeated_in_one_process": self.repeated_in_one_process,
            "repeated_across_processes": self.repeated_across_processes,
            "processes": self.processes,
            "errors": self.errors[:5],
            "exact": self.exact,
            "verdict": self.verdict,
        }


VARIANT_LABELS = {
    "naive": "naive",
    "naive-io": "naive + I/O",
    "sharedstate": "sharedstate",
    "sharedstate-io": "sharedstate + I/O",
    "naive-await": "naive + await",
}


def render(rows: list[Row], settings: Settings, url: str, console: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{settings.clients} simultaneous clients x {settings.rounds} round(s) per row",
        box=box.SIMPLE_HEAD,
    )
    for heading, justify in (
        ("mode", "left"),
        ("variant", "left"),
        ("requests", "right"),
        ("unique values", "right"),
        ("duplicates", "right"),
        ("skipped numbers", "right"),
        ("verdict", "left"),
    ):
        table.add_column(
            heading,
            justify=justify,  # type: ignore[arg-type]  # each is one of rich's justify words
            no_wrap=heading in ("mode", "variant", "verdict"),
        )
    previous = None
    for row in rows:
        if previous is not None and row.mode != previous:
            table.add_section()
        previous = row.mode
        shared = row.variant.startswith("sharedstate")
        style = "green" if row.exact else ("bold red" if shared else "yellow")
        verdict = row.verdict if not (row.exact and not shared) else "exact (this run)"
        table.add_row(
            row.mode,
            VARIANT_LABELS[row.variant],
            str(row.requests),
            str(row.unique),
            str(row.duplicates),
            str(row.skipped),
            f"[{style}]{verdict}[/]",
        )
    console.print(table)
    django_rows = any(row.mode.startswith("django") for row in rows)
    if settings.url is not None or not all(row.mode.startswith("django") for row in rows):
        console.print(f"sharedstate store: {redact_url(url)}")
    if settings.url is None and django_rows:
        console.print(
            "Django rows' store: derived from DATABASES, "
            "sqlite:///<temporary directory>/<mode>/sharedstate.db"
        )
    notes = [
        "per-process copies: two processes handed out the same number; each worker (and, with "
        "processes=N, each request's forked child) counts on its own copy of the global.",
        "lost updates: one process handed out a number twice; two threads, greenlets or "
        "async tasks read the same value before either wrote it back.",
    ]
    bare = [r for r in rows if r.variant == "naive" and r.exact and r.mode not in ASGI_MODES]
    if bare:
        where = ", ".join(
            f"{r.mode} ({r.processes} process{'es' if r.processes != 1 else ''} answered)"
            for r in bare
        )
        notes.append(
            f"naive exact in {where}: when one process answers every client, its "
            "copy is the only one, and in CPython the bare `self.param += 1` is rarely torn "
            "between threads (they switch at calls and loop edges). That is luck, not safety: "
            "the '+ I/O' row does one I/O (time.sleep(0), standing for a log line or a query) "
            "between read and write, as real methods do."
        )
    notes += asgi_notes(rows, ASGI_MODES)
    for note in notes:
        console.print(f"- {note}", highlight=False)
    shared_rows = [r for r in rows if r.variant.startswith("sharedstate")]
    if shared_rows and all(r.exact for r in shared_rows):
        console.print(
            "[green]sharedstate: every client got a unique number, 1..N, in every mode.[/]"
        )
    elif shared_rows:
        console.print("[bold red]sharedstate: NOT exact in some row (see above).[/]")
