"""A minimal Django project that sits behind sessiongate (tests/django.rs, docs/django.md).

Environment (all optional):
  GATETEST_DB                     SQLite file (default: db.sqlite3 beside manage.py)
  GATETEST_PG                     JSON of a PostgreSQL DATABASES entry; wins over the SQLite file
  DJANGO_CSRF_TRUSTED_ORIGINS     space-separated origins, e.g. sessiongate's public_url
"""
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "test-only-insecure-key-for-the-sessiongate-interop-project"
DEBUG = False
# Behind sessiongate the request's Host is the upstream's own address (the proxy sets it).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Django's own CSRF protection stays on: requests that passed sessiongate carry the same
    # csrftoken cookie and X-CSRFToken header, so they pass here too.
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user from the X-Auth-User header that sessiongate sets.
    "gatetest.middleware.SessiongateUserMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "gatetest.middleware.SessiongateUserBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Every hasher Django 5.2 ships; the first one writes new hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

ROOT_URLCONF = "gatetest.urls"
WSGI_APPLICATION = "gatetest.wsgi.application"

if os.environ.get("GATETEST_PG"):
    DATABASES = {"default": json.loads(os.environ["GATETEST_PG"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("GATETEST_DB", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"timeout": 10},
        }
    }

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# sessiongate's cookie names are Django's: `csrftoken` is shared on purpose, while Django's own
# session cookie gets another name (the gateway keeps `sessionid` to itself).
CSRF_COOKIE_NAME = "csrftoken"
CSRF_HEADER_NAME = "HTTP_X_CSRFTOKEN"
SESSION_COOKIE_NAME = "django_sessionid"
CSRF_TRUSTED_ORIGINS = os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.security.csrf": {"handlers": ["console"], "level": "WARNING"}},
}
