"""WSGI entry point for gunicorn (`gunicorn lorasite.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorasite.settings")
application = get_wsgi_application()
