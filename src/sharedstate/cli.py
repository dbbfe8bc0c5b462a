"""The ``sharedstate`` command: ``demo``, ``check``, ``bench`` and ``serve``.

Each subcommand lives in the module that implements it and is imported only when
it is run, so ``sharedstate --help`` stays fast and a missing optional dependency
of one command (gunicorn for ``demo``, say) never breaks the others.
"""

from __future__ import annotations

import importlib

import click

#: subcommand name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "demo": "sharedstate.demo:demo_command",
    "check": "sharedstate.check.command:check_command",
    "bench": "sharedstate.bench:bench_command",
    "serve": "sharedstate.serve:serve_command",
}

HELP = {
    "demo": "The classic global counter (Flask, ASGI), naive beside sharedstate, under real servers.",
    "check": "Record a concurrent history and check it for linearizability.",
    "bench": "Throughput of sharedstate beside the raw operations of a backend.",
    "serve": "Run the server for a manager:// store URL.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise click.ClickException(
                f"`sharedstate {cmd_name}` needs a package that is not installed ({exc.name}); "
                f"try: pip install 'sharedstate[all]'"
            ) from exc
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="sharedstate")
def main() -> None:
    """sharedstate: one shared, atomic object across threads, processes and hosts."""
