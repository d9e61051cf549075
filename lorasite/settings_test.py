"""Test settings: the production settings with plain static storage.

A hashed-manifest storage needs `collectstatic` first and makes `live_server` 404 static files.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from lorasite.settings import *  # noqa: F403
from lorasite.settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users
CATALOG_REFRESH_IN_BACKGROUND = False  # a test reads the catalog of its own database, in line
