"""The same view with sharedstate: two lines changed, and every client gets its own number.

    gunicorn -w 4 -k gthread --threads 8 mysite.wsgi     # or: python manage.py runserver
    python manage.py sharedstate show global_obj

``global_obj`` is one object shared by every thread and worker process; each ``query()``
is one atomic step. Nothing is read from the settings or connected when this module is
imported; the store (``SHAREDSTATE_URL``, or ``sharedstate.db`` beside the SQLite
database) opens at the first call, in each worker.
"""

from django.shortcuts import render

from sharedstate.django import state  # changed: 1 of 2


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = state.object("global_obj", SomeObj, 0)  # changed: 2 of 2 (was: SomeObj(0))


def home(request):
    return render(request, "counter/index.html", {"number": global_obj.query()})
