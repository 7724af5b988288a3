"""Settings for the support-triage project, read from the environment (12-factor).

With no environment at all this is the *embedded* mode described in the README: SQLite under
``var/``, Celery tasks run in-process, and the offline agent backend. Production mode
(``DJANGO_DEBUG`` off, the default) refuses to start without ``DJANGO_SECRET_KEY``.
A ``.env`` file at the project root, when present, is read first (``python3 dev.py demo``
writes one for local use; it is never committed).
"""

import tempfile
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off. For local development run "
            "`python3 dev.py demo` (it writes a .env) or set DJANGO_DEBUG=true."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tickets",
    "agent",
    "evaluations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "triage.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "triage.urls"
# After logging in without a ?next=, staff land on the review queue (triage.landing.home).
LOGIN_REDIRECT_URL = "home"
WSGI_APPLICATION = "triage.wsgi.application"
ASGI_APPLICATION = "triage.asgi.application"

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
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'triage.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
# A connection that died under us (database restart) is replaced instead of failing a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite: wait for the write lock instead of failing at once; WAL lets readers run alongside.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # also holds the default SQLite file's folder
# Files served at the site's root, such as /favicon.ico (WhiteNoise, in every mode).
WHITENOISE_ROOT = BASE_DIR / "triage" / "public"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production mode) ---------------------------------------------------------------
# Trust X-Forwarded-Proto only when told the app sits behind a TLS proxy that sets it (and
# strips a client's own): reachable directly, anyone could claim HTTPS with that header.
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp; Django has its own only from 6.0): every page loads
# scripts, styles, images and fonts from this server only, and runs no inline script or style,
# so text that slipped past escaping (a ticket is written by anyone) cannot run or restyle
# a page. Styles and scripts live in the apps' static/ folders. ``data:`` images are for the
# admin's and Swagger UI's own stylesheets, which draw their icons as data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is opt-in (a site owner's decision), see DJANGO_SECURE_HSTS_PRELOAD.
    "security.W021",
    # The redirect is turned off only where the proxy in front redirects to HTTPS itself
    # (the configuration table says so); check --deploy should not fail that setup.
    *([] if SECURE_SSL_REDIRECT or DEBUG else ["security.W008"]),
]

# Requests to /api/ above this size are answered 413 before anything is parsed.
API_MAX_BODY_BYTES = 1024 * 1024
API_MAX_JSON_DEPTH = 32  # no endpoint takes more than two levels; 32 leaves room, bounds abuse

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # JSON only, bounded in size and depth, every string checked (triage/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["triage.parsers.SafeJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["triage.permissions.StrictDjangoModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "triage.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "ingest": env.str("TRIAGE_INGEST_RATE", default="120/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Support triage API",
    "DESCRIPTION": "Ingest tickets, review the agent's proposals, inspect runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs describe every endpoint: for signed-in users and tokens only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Every asset from this server (drf-spectacular-sidecar), nothing from a CDN. ReDoc is not
    # served: its bundle loads its logo from Redocly's CDN, whatever it is told.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: it is an image from validator.swagger.io, given the schema's URL.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "triage.schema.closed_request_bodies",
        "triage.schema.blank_as_any_of",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
# No broker configured: tasks run in-process, synchronously (the embedded mode).
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# The cache holds the API throttle's counters and the failed-enqueue count: shared by every
# web and worker process through Redis when there is one (a per-process cache would let each
# gunicorn worker accept the whole rate), else in this process.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "triage",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge after the task ran, and give a task back if its worker process dies (kill -9):
# without reject_on_worker_lost a killed child's task is acked and lost (celery#3541).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Unacked messages come back after this; every retry backoff and ETA is kept well below it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat keeps its schedule state in a file: outside the working tree (a checkout stays clean).
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "TRIAGE_BEAT_SCHEDULE_FILE",
    default=str(Path(tempfile.gettempdir()) / "triage-celerybeat-schedule"),
)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # Every log line is masked (secrets, personal data) before it leaves the process.
    "filters": {"redact": {"()": "agent.redaction.RedactingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- The agent --------------------------------------------------------------------------------
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="") or None
# Explicit choice, else Claude when a key is set, else the offline backend.
TRIAGE_AGENT_BACKEND = env.str(
    "TRIAGE_AGENT_BACKEND", default="anthropic" if ANTHROPIC_API_KEY else "offline"
)
TRIAGE_MODEL = env.str("TRIAGE_MODEL", default="claude-haiku-4-5")
# US dollars per million tokens for TRIAGE_MODEL; cache reads and writes are priced from input.
TRIAGE_PRICE_INPUT_PER_MTOK = env.float("TRIAGE_PRICE_INPUT_PER_MTOK", default=1.0)
TRIAGE_PRICE_OUTPUT_PER_MTOK = env.float("TRIAGE_PRICE_OUTPUT_PER_MTOK", default=5.0)
TRIAGE_PRICE_CACHE_READ_FACTOR = 0.1
TRIAGE_PRICE_CACHE_WRITE_FACTOR = 1.25
TRIAGE_MODEL_TIMEOUT_SECONDS = env.float("TRIAGE_MODEL_TIMEOUT_SECONDS", default=60.0)
# Tickets stuck before a proposal longer than this are re-enqueued by the sweeper.
TRIAGE_STALE_AFTER_SECONDS = env.int("TRIAGE_STALE_AFTER_SECONDS", default=300)
# A reviewer's claim on a proposal lapses after this many minutes (agent.claims): long enough to
# read and decide, short enough that a reviewer who walked away does not hold a ticket for long.
TRIAGE_CLAIM_MINUTES = env.int("TRIAGE_CLAIM_MINUTES", default=15)
if not 1 <= TRIAGE_CLAIM_MINUTES <= 480:
    raise ImproperlyConfigured(
        f"TRIAGE_CLAIM_MINUTES must be between 1 and 480 (a shift); got {TRIAGE_CLAIM_MINUTES}."
    )
# Seconds; the loop's retry backoff base (tests set 0).
TRIAGE_RETRY_BASE_DELAY = env.float("TRIAGE_RETRY_BASE_DELAY", default=0.5)
# Retrain the offline model once this many new reviews or labelled tickets arrived.
TRIAGE_RETRAIN_AFTER = env.int("TRIAGE_RETRAIN_AFTER", default=20)
# Where the offline backend keeps the models it builds from the shipped corpus (pickles, so a
# folder as trusted as the code); an empty value builds them in every process instead.
TRIAGE_MODEL_CACHE_DIR = env.str(
    "TRIAGE_MODEL_CACHE_DIR", default=str(BASE_DIR / "var" / "model-cache")
)
# The release check (go / no-go): the frozen suite whose runs are release evidence, and how old
# that evidence may be.
TRIAGE_RELEASE_SUITE = env.str("TRIAGE_RELEASE_SUITE", default="release")
TRIAGE_RELEASE_EVIDENCE_MAX_AGE_DAYS = env.int("TRIAGE_RELEASE_EVIDENCE_MAX_AGE_DAYS", default=7)

CELERY_BEAT_SCHEDULE = {
    "requeue-stale-tickets": {"task": "agent.tasks.requeue_stale_tickets", "schedule": 60.0},
    "retrain-offline-model": {
        "task": "agent.tasks.retrain_offline_model",
        "schedule": 600.0,
        "kwargs": {"only_if_due": True},
    },
}
