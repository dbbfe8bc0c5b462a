"""The apps that ``sharedstate demo`` serves under ASGI servers (uvicorn, gunicorn with the
uvicorn worker, hypercorn): the classic global counter in ``async def`` views, naive and with
sharedstate's async API.

Three variants, routes of one Starlette app:

=================== ===================================================================
``/naive/``          as people write it: ``global_obj = SomeObj(0)``, a module global whose
                     plain method is called from ``async def``
``/naive-await/``    the same with an ``async`` method that awaits between read and write
``/sharedstate/``    the two-line change: ``store = sharedstate.connect_async(url)``,
                     ``global_obj = store.object("global_obj", SomeObj, 0)``, and the view
                     awaits ``global_obj.query()``
=================== ===================================================================

Why these variants: inside one event loop a plain method runs to its end before any other
request does, so the naive row can only go wrong across worker processes (each counts on
its own copy). An ``await`` between read and write hands the loop to other requests, and
then one process loses updates too. The sharedstate row runs the plain, synchronous method
as one atomic step on the store, awaited, in every worker.

Why plain Starlette and not FastAPI: FastAPI is Starlette plus request parsing and
OpenAPI, none of which the counter uses; Starlette boots faster, and the demo starts 4
workers under each of 3 servers. ``examples/fastapi_app/`` has the same counter in FastAPI.

Every response carries ``X-Demo-Pid``, the process that served it, as in
:mod:`sharedstate.demo_app`. ``create_app`` is a factory: ``uvicorn --factory
sharedstate.demo_asgi_app:create_app``, ``hypercorn 'sharedstate.demo_asgi_app:create_app()'``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from .demo_asgi import ASGI_VARIANTS, VARIANTS_VARIABLE
from .examples import SomeObj, SomeObjWithAwait

#: the environment read in each server process (the same variables as ``demo_app``'s)
URL_VARIABLE = "SHAREDSTATE_DEMO_URL"
PREFIX_VARIABLE = "SHAREDSTATE_DEMO_PREFIX"

PAGE = '<!doctype html>\n<title>Your number</title>\n<p class="number">{}</p>\n'

View = Callable[[Request], Awaitable[HTMLResponse]]


def _page(number: int) -> HTMLResponse:
    return HTMLResponse(PAGE.format(number), headers={"X-Demo-Pid": str(os.getpid())})


def naive_view() -> View:
    """The counter as people write it: a module global (here one per app made), its plain
    method called from ``async def``."""
    global_obj = SomeObj(0)

    async def home(request: Request) -> HTMLResponse:
        return _page(global_obj.query())

    return home


def naive_await_view() -> View:
    """The same with an ``async`` method that awaits between its read and its write."""
    global_obj = SomeObjWithAwait(0)

    async def home(request: Request) -> HTMLResponse:
        return _page(await global_obj.query())

    return home


def shared_view(url: str | None, prefix: str) -> tuple[View, Callable[[], Awaitable[None]]]:
    """The same app with sharedstate's async API: one object for every worker process.
    Returns the view and the store's ``aclose`` (run at the server's shutdown)."""
    import sharedstate

    store = sharedstate.connect_async(url or _default_url(), prefix=prefix)
    global_obj = store.object("global_obj", SomeObj, 0)

    async def home(request: Request) -> HTMLResponse:
        return _page(await global_obj.query())

    return home, store.aclose


def _default_url() -> str:
    return "sqlite:///" + os.path.abspath("sharedstate-demo.db")


async def _not_found(request: Request) -> PlainTextResponse:
    return PlainTextResponse(
        "sharedstate demo: the apps are at /naive/, /naive-await/, /sharedstate/\n",
        status_code=404,
    )


def _starlette(routes: list[Route], closers: list[Callable[[], Awaitable[None]]]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for close in closers:
            with contextlib.suppress(Exception):
                await close()

    routes.append(Route("/{path:path}", _not_found))
    return Starlette(routes=routes, lifespan=lifespan)


def create_app(url: str | None = None, prefix: str | None = None) -> Starlette:
    """The variants under one server; the store URL, the name prefix and the variants to
    serve come from the arguments or the environment (the demo sets them for each server
    it starts). A variant the run does not measure is not served, so its store is never
    opened."""
    url = url or os.environ.get(URL_VARIABLE)
    prefix = prefix if prefix is not None else os.environ.get(PREFIX_VARIABLE, "")
    wanted = os.environ.get(VARIANTS_VARIABLE) or ",".join(ASGI_VARIANTS)
    routes: list[Route] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    for variant in wanted.split(","):
        if variant == "naive":
            routes.append(Route("/naive/", naive_view()))
        elif variant == "naive-await":
            routes.append(Route("/naive-await/", naive_await_view()))
        elif variant == "sharedstate":
            # the same prefix as demo_app's /sharedstate/: a WSGI server and an ASGI server
            # given one URL and prefix share one object
            view, close = shared_view(url, f"{prefix}sharedstate-")
            routes.append(Route("/sharedstate/", view))
            closers.append(close)
        elif variant:
            raise ValueError(f"no ASGI variant {variant!r}; choose from {', '.join(ASGI_VARIANTS)}")
    return _starlette(routes, closers)
