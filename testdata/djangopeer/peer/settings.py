"""Settings of a minimal OHTK look-alike: Django's auth, Django OAuth Toolkit at /o/ and an
OHTK-style /api/userinfo/, on SQLite.

Everything that varies per test run is read from the JSON file named by the PEER_CONFIG
environment variable:

    {"database": "/tmp/x/peer.sqlite3", "tenant_name": "Bunny Province",
     "access_token_lifetime": 36000, "users": [...], "application": {...}}
"""
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

with open(os.environ["PEER_CONFIG"], encoding="utf-8") as f:
    PEER = json.load(f)

# Only for tests on 127.0.0.1; never deployed.
SECRET_KEY = PEER.get("secret_key", "djangopeer-test-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "peer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Authenticates "Authorization: Bearer" requests as the token's user, so that
    # /api/userinfo/ can use request.user like OHTK's view does.
    "oauth2_provider.middleware.OAuth2TokenMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "oauth2_provider.backends.OAuth2Backend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "peer.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": PEER["database"],
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"

OAUTH2_PROVIDER = {
    # OHTK's settings: PKCE allowed, not required; DOT's defaults otherwise.
    "PKCE_REQUIRED": False,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(PEER.get("access_token_lifetime") or 36000),
    "SCOPES": {"read": "Read scope", "write": "Write scope"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
