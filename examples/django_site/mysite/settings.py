"""A minimal project: the classic global counter, naive (``/naive/``) and with sharedstate
(``/``, and ``/async/`` for the same object from an ``async def`` view).

The sharedstate store is not configured: with ``SHAREDSTATE_URL`` unset it is derived from
``DATABASES["default"]``, here the file ``sharedstate.db`` beside ``db.sqlite3``. Set
``SHAREDSTATE_URL`` (say ``redis://localhost:6379/0``) to share it between hosts.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "sharedstate.django",  # system checks and `manage.py sharedstate show/reset`
    "counter",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"},
}
USE_TZ = True
