"""The app for ``INSTALLED_APPS``: it adds the system checks and ``manage.py sharedstate``.

``state`` works without it; the app only makes Django find the checks (registered when the
app registry is ready, so importing this module reads no setting) and the command.
"""

from __future__ import annotations

from django.apps import AppConfig


class SharedStateConfig(AppConfig):
    name = "sharedstate.django"
    label = "sharedstate"
    verbose_name = "sharedstate"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
