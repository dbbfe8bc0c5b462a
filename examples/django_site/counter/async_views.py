"""The same counter for ``async def`` views: ``astate`` instead of ``state``, and the call
awaited, so the worker's event loop serves other requests while the store answers.

    gunicorn -w 4 -k uvicorn_worker.UvicornWorker mysite.asgi   # or: uvicorn mysite.asgi:application

``global_obj`` here and in ``views.py`` are one object (one name, one class): sync and async
views hand out numbers from the same counter.
"""

from django.shortcuts import render

from counter.views import SomeObj
from sharedstate.django import astate

global_obj = astate.object("global_obj", SomeObj, 0)


async def home(request):
    return render(request, "counter/index.html", {"number": await global_obj.query()})
