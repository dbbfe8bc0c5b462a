"""The WSGI app: ``gunicorn -w 4 -k gthread --threads 8 mysite.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
