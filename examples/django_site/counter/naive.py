"""The global counter as people write it: wrong under any real server.

Under ``gunicorn -w 4`` every worker process counts on its own ``global_obj``, so clients
see 1, 1, 2, 1, 3, 2 ... instead of 1..N; threads of one worker may also lose updates.
"""

from django.shortcuts import render


class SomeObj:
    def __init__(self, param):
        self.param = param

    def query(self):
        self.param += 1
        return self.param


global_obj = SomeObj(0)


def home(request):
    return render(request, "counter/index.html", {"number": global_obj.query()})
