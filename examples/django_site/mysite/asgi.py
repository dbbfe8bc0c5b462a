"""The ASGI app: ``gunicorn -w 4 -k uvicorn_worker.UvicornWorker mysite.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_asgi_application()
