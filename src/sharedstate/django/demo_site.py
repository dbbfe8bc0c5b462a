"""The Django site that ``sharedstate demo`` serves: the classic global counter view, naive
and with sharedstate, as ``examples/django_site`` has it, in one module that an installed
package can import (``gunicorn sharedstate.django.demo_site:application``).

=================== ===================================================================
``/naive/``          ``global_obj = SomeObj(0)``, a module global
``/naive-io/``       the same with a method that does I/O between its read and its write
``/sharedstate/``    ``global_obj = state.object("global_obj", SomeObj, 0)``
``/sharedstate-io/`` that change applied to the method with I/O
=================== ===================================================================

Served as ASGI (``sharedstate.django.demo_site:asgi_application``, with
``$SHAREDSTATE_DEMO_DJANGO_STACK=asgi``), its views are ``async def``, as the demo's other
ASGI rows have them: ``/naive/`` (the plain method called from ``async def``),
``/naive-await/`` (an ``async`` method awaiting between its read and its write) and
``/sharedstate/`` (``await global_obj.query()`` on ``astate``).

The settings are made here, from the environment the demo sets: the project's SQLite
database lives in ``$SHAREDSTATE_DEMO_DJANGO_DIR``, and with no store URL given the
sharedstate store is the default one derived from it (``sharedstate.db`` beside it), as in a
real project. Every response carries ``X-Demo-Pid``, the process that served it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from ..demo import DJANGO_DIRECTORY_VARIABLE, DJANGO_NAMES
from ..demo_app import PREFIX_VARIABLE, URL_VARIABLE
from ..examples import SomeObj, SomeObjWithAwait, SomeObjWithIO
from .asyncstate import astate
from .state import state

#: "asgi": the URLconf of ``async def`` views (the demo sets it for its Django ASGI row)
STACK_VARIABLE = "SHAREDSTATE_DEMO_DJANGO_STACK"

#: "startproject": the apps and middleware of a project made by ``django-admin startproject``
#: (``benchmarks/django_bench.py --middleware startproject``); otherwise the minimal set
MIDDLEWARE_VARIABLE = "SHAREDSTATE_DEMO_DJANGO_MIDDLEWARE"
STARTPROJECT_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
PAGE = '<!doctype html>\n<title>Your number</title>\n<p class="number">{{ number }}</p>\n'


def configure() -> None:
    """The demo project's settings (once per process)."""
    if settings.configured:
        return
    directory = os.environ.get(DJANGO_DIRECTORY_VARIABLE) or tempfile.mkdtemp(prefix="sharedstate-django-")
    apps, middleware = ["sharedstate.django"], ["django.middleware.common.CommonMiddleware"]
    if os.environ.get(MIDDLEWARE_VARIABLE) == "startproject":
        apps, middleware = [*STARTPROJECT_APPS, *apps], STARTPROJECT_MIDDLEWARE
    settings.configure(
        DEBUG=False,
        SECRET_KEY="demo-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=apps,
        MIDDLEWARE=[*middleware, f"{__name__}.served_by"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(directory, "db.sqlite3"),
            }
        },
        SHAREDSTATE_URL=os.environ.get(URL_VARIABLE) or None,
        SHAREDSTATE_PREFIX=os.environ.get(PREFIX_VARIABLE, ""),
        USE_TZ=True,
    )


def served_by(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., Any]:
    """Middleware: ``X-Demo-Pid``, the process that served the response."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Demo-Pid"] = str(os.getpid())
        return response

    return middleware


_template: list[Any] = []


def _page(number: int, request: HttpRequest) -> HttpResponse:
    if not _template:  # compiled once per process, as a template file would be
        from django.template import engines

        _template.append(engines["django"].from_string(PAGE))
    return HttpResponse(_template[0].render({"number": number}, request))


def counter_view(global_obj: Any) -> Callable[[HttpRequest], HttpResponse]:
    """The classic view: one ``global_obj.query()`` per request, its number on the page."""

    def home(request: HttpRequest) -> HttpResponse:
        return _page(global_obj.query(), request)

    return home


naive_obj = SomeObj(0)
naive_io_obj = SomeObjWithIO(0)
shared_obj = state.object(DJANGO_NAMES[0], SomeObj, 0)
shared_io_obj = state.object(DJANGO_NAMES[1], SomeObjWithIO, 0)



def async_counter_view(global_obj: Any, awaited: bool) -> Callable[..., Any]:
    """The view as ``async def``: the number of ``global_obj.query()``, awaited or not."""

    async def home(request: HttpRequest) -> HttpResponse:
        number = await global_obj.query() if awaited else global_obj.query()
        return _page(number, request)

    return home


WSGI_PATTERNS = [
    path("naive/", counter_view(naive_obj)),
    path("naive-io/", counter_view(naive_io_obj)),
    path("sharedstate/", counter_view(shared_obj)),
    path("sharedstate-io/", counter_view(shared_io_obj)),
]
ASGI_PATTERNS = [
    path("naive/", async_counter_view(SomeObj(0), awaited=False)),
    path("naive-await/", async_counter_view(SomeObjWithAwait(0), awaited=True)),
    path("sharedstate/", async_counter_view(astate.object(DJANGO_NAMES[0], SomeObj, 0), True)),
]
urlpatterns = ASGI_PATTERNS if os.environ.get(STACK_VARIABLE) == "asgi" else WSGI_PATTERNS

configure()

from django.core.asgi import get_asgi_application  # noqa: E402  (after the settings)
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
asgi_application = get_asgi_application()
