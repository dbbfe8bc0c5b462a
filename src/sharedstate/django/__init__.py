"""The Django integration: a module global made one shared, atomic object, in two lines.

    # settings.py
    INSTALLED_APPS = [..., "sharedstate.django"]     # system checks, `manage.py sharedstate`

    # views.py
    from sharedstate.django import state

    global_obj = state.object("global_obj", SomeObj, 0)   # was: global_obj = SomeObj(0)

``state`` is configured from the settings (``SHAREDSTATE_URL``; unset, a store derived from
``DATABASES["default"]``: see :mod:`sharedstate.django.conf`) when it is first used, never at
import time, and each process opens its own connections (gunicorn ``--preload`` included).

Methods may run more than once, so they change only the object; work that must follow a
call only when the surrounding database transaction commits goes in
``transaction.on_commit`` (see the README, "Django").

The async half (``astate``, an async store for ``async def`` views) comes with sharedstate's
async API; it will read the same settings through :func:`sharedstate.django.conf.store_settings`.
"""

from __future__ import annotations

from .conf import StoreSettings, store_settings
from .state import DjangoState, state

__all__ = ["DjangoState", "StoreSettings", "state", "store_settings"]
