"""lorasite settings: one module, every deployment-specific value read from the environment.

Variables are listed in `.env.example`; a `.env` file beside manage.py is read if present.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.csp import CSP

from lorasite.clients import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
_DEV_KEY = "insecure-dev-key-only-for-debug-and-tests"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_KEY if DEBUG else "")
if not SECRET_KEY or SECRET_KEY == "change-me":
    raise environ.ImproperlyConfigured("Set SECRET_KEY (see .env.example); `make` writes one into .env.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "lorasite.errors.csrf_failure"  # JSON under /api/, Django's page elsewhere
# Proxies (addresses or networks) whose X-Forwarded-For we believe; everyone else's is ignored, so a
# client cannot pick the address its rate limits and login lockouts count against.
TRUSTED_PROXIES = parse_networks(env.list("TRUSTED_PROXIES", default=[]))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "knox",
    "calculator",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # JSON 413 for oversized API bodies, a clear 503 for anything the database cannot answer.
    "lorasite.middleware.EdgeErrorsMiddleware",
    # Compress pages and API responses (static files come pre-compressed from whitenoise); Django adds
    # random bytes to the gzip header against BREACH-style attacks on the CSRF token.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "lorasite.middleware.SlashlessWritesMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # django.contrib.auth's, but a session the database cannot look up reads as "signed out, unavailable".
    "lorasite.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # the lockout page for locked-out sign-ins (last, as axes asks)
]

ROOT_URLCONF = "lorasite.urls"
WSGI_APPLICATION = "lorasite.wsgi.application"
ASGI_APPLICATION = "lorasite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # The results panel only (see lorasite/jinja2.py): it is rendered for every new configuration.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "lorasite.jinja2.environment"},
    },
]

# SQLite by default; PostgreSQL (psycopg 3) when DATABASE_URL is set.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database that does not answer must not hold a worker: connecting gives up after DATABASE_CONNECT_TIMEOUT
# seconds, the server cancels statements after DATABASE_STATEMENT_TIMEOUT, and the client itself stops
# waiting for any answer after DATABASE_TIMEOUT (a hung server cannot cancel anything). Each is a 503.
# 0 turns the last two off (`migrate` on a large table, run as a deployment step, may need that).
DATABASE_TIMEOUT = env.float("DATABASE_TIMEOUT", default=5.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "lorasite.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3))
    statement_ms = int(env.float("DATABASE_STATEMENT_TIMEOUT", default=4.0) * 1000)
    if statement_ms:
        DATABASES["default"]["OPTIONS"].setdefault("options", f"-c statement_timeout={statement_ms}")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The preset and GPU catalogs are re-read in a background thread when they expire, so no request waits
# on the database for them (tests read them in line).
CATALOG_REFRESH_IN_BACKGROUND = env.bool("CATALOG_REFRESH_IN_BACKGROUND", default=True)

# Per-process memory by default; a shared Redis (CACHE_URL) when several app servers or workers run:
# rate limits and login lockouts count there (`manage.py check --deploy` warns without it).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://lorasite")}
CACHES["default"].setdefault("KEY_PREFIX", env.str("CACHE_KEY_PREFIX", default="lorasite"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

LOGIN_URL = "login"  # django.contrib.auth's views under /accounts/; accounts are made in the admin
LOGIN_REDIRECT_URL = "mine"
LOGOUT_REDIRECT_URL = "calculator"

# Sign-in attempts (the login page and the admin's) are limited by django-axes per client address:
# LOGIN_FAILURE_LIMIT failures lock that address out for LOGIN_LOCKOUT_MINUTES. Counted in Redis when
# CACHE_URL is set, else in the database (a per-process cache would multiply the limit by the workers).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if env.str("CACHE_URL", default="")
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "lorasite.clients.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False

# Personal API tokens for scripts (django-rest-knox): random, shown once, stored as a SHA-512 digest.
KNOX_TOKEN_MODEL = "accounts.ApiToken"
MIGRATION_MODULES = {"knox": None}  # knox's own token table is swapped out: its migrations would still make it
REST_KNOX = {"TOKEN_PREFIX": "lorasite_", "TOKEN_TTL": None, "AUTO_REFRESH": False}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "calculator.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["lorasite.parsers.JSONParser"],
    # The browser's session (with CSRF) and personal API tokens; never HTTP Basic (a password per request).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",  # first: a bad token is a 401 that says "Token"
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon_save": env.str("ANON_SAVE_RATE", default="30/hour")},
    "EXCEPTION_HANDLER": "calculator.api.errors.exception_handler",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# All anonymous clients together (many addresses must not fill the database either), and the most one
# anonymous save may store (a config.json is a few KiB; signed-in users may store up to MAX_SAVE_BYTES).
ANON_SAVE_SITE_RATE = env.str("ANON_SAVE_SITE_RATE", default="600/hour")
ANON_SAVE_MAX_BYTES = env.int("ANON_SAVE_MAX_BYTES", default=64 * 1024)
MAX_SAVE_BYTES = env.int("MAX_SAVE_BYTES", default=1024 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "lorasite API",
    "DESCRIPTION": "LoRA / QLoRA parameter and memory estimates (all sizes in bytes, counts in parameters).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # OpenAPI 3.1: the request schemas are pydantic's JSON Schema 2020-12 (null types, numeric exclusive bounds).
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "calculator.api.schema.add_links"],
    "SERVE_AUTHENTICATION": [],  # the schema and docs are public: they never look up who is asking
}

# Production hardening; `manage.py check --deploy` passes with DEBUG=0 and SECURE_SSL=1.
SECURE_SSL = env.bool("SECURE_SSL", default=False)
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = SECURE_SSL
SECURE_HSTS_SECONDS = 31536000 if SECURE_SSL else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL
SECURE_HSTS_PRELOAD = SECURE_SSL
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_SSL else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (Django's own middleware): only this origin's scripts, styles, fonts and
# requests; no inline script or style anywhere (the pages, the admin's and the API docs' are files).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],  # the API docs' icons are data: URLs in its stylesheet
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
