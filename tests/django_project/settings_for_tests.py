"""examples/django_site's settings, with what a test changes given as JSON in TEST_SETTINGS
(``DATABASES``, ``SHAREDSTATE_URL``, ``CACHES``...), and one more view: the counter whose
method does I/O between its read and its write."""

import json
import os

from mysite.settings import *  # noqa: F403

ROOT_URLCONF = "urls_for_tests"
ALLOWED_HOSTS = ["*"]
globals().update(json.loads(os.environ.get("TEST_SETTINGS", "{}")))
