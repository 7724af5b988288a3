"""Settings for the test suite.

The suite runs anywhere: against PostgreSQL and Redis when they are reachable (the URLs below,
or ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL``), else on SQLite with the tests that need those
services skipped. ``TRIAGE_REQUIRE_SERVICES=1`` (set by CI) turns an unreachable service into a
failure instead of a skip.
"""

import os
import socket
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# Tests never reach a real model: the backend is chosen per test.
os.environ.pop("ANTHROPIC_API_KEY", None)
os.environ.pop("REDIS_URL", None)

from .settings import *  # noqa: F403
from .settings import BASE_DIR, env

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/triage")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _per_worker(redis_url: str) -> str:
    """Under pytest-xdist each worker gets its own Redis database (the given one, then the
    ones below it), as pytest-django gives each its own test database: a worker's broker
    flush or queue never touches another's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    parts = urlsplit(redis_url)
    database = int(parts.path.strip("/") or 0) - int(worker.removeprefix("gw"))
    return parts._replace(path=f"/{database % 16}").geturl()


TEST_REDIS_URL = _per_worker(TEST_REDIS_URL)
REQUIRE_SERVICES = os.environ.get("TRIAGE_REQUIRE_SERVICES", "") not in {"", "0", "false"}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


POSTGRES_AVAILABLE = _reachable(TEST_DATABASE_URL)
REDIS_AVAILABLE = _reachable(TEST_REDIS_URL)

if POSTGRES_AVAILABLE:
    DATABASES = {"default": env.db_url_config(TEST_DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "var" / "test.sqlite3"),  # the test database is in memory
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

# Tests run tasks in-process unless a test starts a real worker on Redis.
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

ANTHROPIC_API_KEY = ""
TRIAGE_AGENT_BACKEND = "offline"
TRIAGE_RETRY_BASE_DELAY = 0.0
