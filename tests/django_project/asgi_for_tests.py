"""The example project as an ASGI app (``gunicorn -k uvicorn_worker.UvicornWorker``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_for_tests")
application = get_asgi_application()
