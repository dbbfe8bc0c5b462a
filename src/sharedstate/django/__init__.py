"""The Django integration: a module global made one shared, atomic object, in two lines.

    # settings.py
    INSTALLED_APPS = [..., "sharedstate.django"]     # system checks, `manage.py sharedstate`

    # views.py
    from sharedstate.django import state

    global_obj = state.object("global_obj", SomeObj, 0)   # was: global_obj = SomeObj(0)

``state`` is configured from the settings (``SHAREDSTATE_URL``; unset, a store derived from
``DATABASES["default"]``: see :mod:`sharedstate.django.conf`) when it is first used, never at
import time, and each process opens its own connections (gunicorn ``--preload`` included).

``async def`` views use ``astate`` (:mod:`sharedstate.django.asyncstate`): the same settings and
declarations on the async API, every call awaited (``await global_obj.query()``).

Methods may run more than once, so they change only the object; work that must follow a
call only when the surrounding database transaction commits goes in
``transaction.on_commit`` (see the README, "Django").
"""

from __future__ import annotations

from .asyncstate import AsyncDjangoState, astate
from .conf import StoreSettings, store_settings
from .state import DjangoState, state

__all__ = ["AsyncDjangoState", "DjangoState", "StoreSettings", "astate", "state", "store_settings"]
