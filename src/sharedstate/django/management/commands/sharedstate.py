"""``python manage.py sharedstate show [NAME]`` and ``python manage.py sharedstate reset NAME``.

The same output as ``flask sharedstate`` (both print through :mod:`sharedstate.cli_show`).
``show`` lists what is stored, and what ``views.py`` declares but has not stored yet: to
know those, it loads the URLconf, as ``manage.py check`` does, which imports the views.
``reset`` asks before it forgets a name; ``--yes`` (or Django's ``--no-input``) does not
ask. URLs are printed redacted.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sharedstate import cli_show
from sharedstate.django.asyncstate import astate
from sharedstate.django.state import state


class Command(BaseCommand):
    help = "Show or reset the project's shared state (sharedstate)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{show,reset}")
        show = actions.add_parser("show", help="List the stored names, or show NAME's state.")
        show.add_argument("name", nargs="?", help="a shared object, counter or lock")
        reset = actions.add_parser(
            "reset", help="Forget object or counter NAME (its factory runs again on next use)."
        )
        reset.add_argument("name")
        reset.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            dest="yes",
            action="store_true",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        store = state.store
        url = state.settings.url
        try:
            if options["action"] == "show":
                self._load_declarations()
                declared = {**astate.declared, **state.declared}  # sync and async views
                cli_show.show(store, url, declared, options["name"], self._echo)
            else:
                name = options["name"]
                if not options["yes"]:
                    self._confirm(cli_show.reset_question(url, name))
                cli_show.reset(store, url, name, self._echo)
        except cli_show.CommandFailed as exc:
            raise CommandError(str(exc)) from None

    def _echo(self, text: str) -> None:
        self.stdout.write(text)

    def _confirm(self, question: str) -> None:
        try:
            answer = input(f"{question} [y/N]: ")
        except EOFError:  # no terminal (a script): never reset without --yes
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("aborted: nothing was reset")

    def _load_declarations(self) -> None:
        """Imports the views (through the URLconf), so names they declare are listed."""
        from django.urls import get_resolver

        try:
            get_resolver().url_patterns  # noqa: B018  (loading it imports the views)
        except Exception as exc:  # a broken URLconf must not hide what is stored
            self.stderr.write(
                f"note: the URLconf could not be loaded ({type(exc).__name__}: {exc}); "
                "names declared in views but not stored yet are not listed"
            )
