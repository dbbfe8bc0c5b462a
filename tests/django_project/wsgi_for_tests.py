"""The example's WSGI app, loaded as gunicorn --preload loads it in the master, which then
also reads both shared objects (so the store is opened before the workers are forked)."""

from counter.views import global_obj
from mysite.wsgi import application  # noqa: F401
from urls_for_tests import global_obj_io

assert global_obj.param >= 0 and global_obj_io.param >= 0
