"""envmanager settings: one module, every knob from an environment variable.

With nothing set, the app runs on the embedded default: SQLite in ./data and Celery in eager
mode. `DATABASE_URL` (PostgreSQL) and `CELERY_BROKER_URL` / `REDIS_URL` switch to the
production stack.
"""

import os
from collections.abc import Callable
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ENVMANAGER_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _file_secret(name: str, generate: Callable[[], str]) -> str:
    """A secret kept in a file of the data folder, made on first start (embedded default only)."""
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _new_django_secret() -> str:
    import secrets

    return secrets.token_urlsafe(50)


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY") or _file_secret("django-secret.key", _new_django_secret)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Keys that encrypt secrets at rest, comma-separated, newest first (MultiFernet). They live
# outside the database: in this variable, or in a file of the data folder by default.
ENVMANAGER_ENCRYPTION_KEYS = env_list("ENVMANAGER_ENCRYPTION_KEYS") or [
    _file_secret("encryption.key", _new_fernet_key)
]

# What a Deployment's metadata-DB URL may reach (deployments.metadata_db_target): `host` or
# `host:port` entries admit PostgreSQL servers, absolute directories admit SQLite files inside
# them. The default admits only the folder of the demo's metadata DBs. The app's own database
# and the rest of the data folder are never admitted.
ENVMANAGER_DEMO_METADATA_DIR = DATA_DIR / "demo-airflow"
ENVMANAGER_METADATA_DB_ALLOWLIST = env_list(
    "ENVMANAGER_METADATA_DB_ALLOWLIST", str(ENVMANAGER_DEMO_METADATA_DIR)
)

# How long a migration waits between a verified copy and deleting the source rows. Longer than
# the secrets backend's default cache time, so no Dag can miss a moved object.
ENVMANAGER_PROPAGATION_SECONDS = env_int("ENVMANAGER_PROPAGATION_SECONDS", 60)
# A migration works in chunks of this many objects, one transaction each (a few bulk
# statements; memory grows with the chunk, not with the run); a worker holds a lease on its run
# for this long (renewed every chunk) so a retry never overlaps it.
ENVMANAGER_MIGRATION_CHUNK_SIZE = env_int("ENVMANAGER_MIGRATION_CHUNK_SIZE", 1000)
ENVMANAGER_MIGRATION_LEASE_SECONDS = env_int("ENVMANAGER_MIGRATION_LEASE_SECONDS", 30)
# How often Celery beat looks for runs whose worker died (they go on within a lease plus this).
ENVMANAGER_MIGRATION_RESUME_SECONDS = env_int("ENVMANAGER_MIGRATION_RESUME_SECONDS", 10)
# Lookups run as PostgreSQL prepared statements (planned once per connection). Turn off behind
# a connection pooler in transaction mode that does not keep prepared statements.
ENVMANAGER_LOOKUP_PREPARED_STATEMENTS = env_bool("ENVMANAGER_LOOKUP_PREPARED_STATEMENTS", True)
# Lookup counts are kept in memory and written by a timer thread in each server process this
# often, and once more when the process exits (0: no timer and no write at exit, only explicit
# flushes; the test suite runs so).
ENVMANAGER_LOOKUP_COUNT_SECONDS = env_int("ENVMANAGER_LOOKUP_COUNT_SECONDS", 5)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here: nothing from a CDN
    "guardian",
    "accounts",
    "deployments",
    "envmanager",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "envmanager.security.SecurityHeadersMiddleware",
    # Last, so it is the first to see a view's exception: a lost database is a 503, not a 500.
    "envmanager.database_outage.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "envmanager.urls"
WSGI_APPLICATION = "envmanager.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'envmanager.sqlite3'}",
        conn_max_age=60,
        # A connection PostgreSQL dropped (restart, failover) is noticed before a request uses it.
        conn_health_checks=True,
    )
}
_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if _POSTGRESQL and ENVMANAGER_LOOKUP_PREPARED_STATEMENTS:
    # Django turns psycopg's prepared statements off. Its own queries bind client-side and are
    # never prepared either way; this lets the lookup's statement be (see envmanager.lookups).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait their turn (up to 20 s) instead of failing with "database is locked": a
    # transaction takes the write lock when it begins (BEGIN IMMEDIATE). One that took it only
    # at its first write, after reading, could not wait for it (SQLite refuses at once).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    # A file, not memory, so a Celery worker process in the tests can open the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-envmanager.sqlite3")}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row
GUARDIAN_MONKEY_PATCH_USER = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from static/ without collectstatic (embedded default, tests).
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# No broker configured means the embedded default: tasks run in the calling process.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# A task whose worker died goes back to the queue after this long (Redis keeps it unacked).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600)}
# `celery -A envmanager beat` (or `worker --beat`) runs these.
CELERY_BEAT_SCHEDULE = {
    "resume-migration-runs": {
        "task": "envmanager.tasks.migration_runs_resume",
        "schedule": ENVMANAGER_MIGRATION_RESUME_SECONDS,
    },
    "purge-deleted-objects": {
        "task": "envmanager.tasks.deleted_objects_purge",
        "schedule": 6 * 3600,
    },
}

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "envmanager.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    # Files, not process memory: the web server's worker processes must share what they count
    # (failed logins).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "envmanager.api.parsers.JSONParser",  # nesting capped: deep JSON is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "envmanager.kernel.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "envmanager API",
    "DESCRIPTION": "Airflow connections, variables, environment variables and metrics exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ObjectTypeEnum": "envmanager.object_types.ObjectType",
        "ScopeEnum": "envmanager.object_types.Scope",
        "LinkScopeEnum": ["DEPLOYMENT", "IDE_PROJECT"],
        "DeploymentScopeEnum": ["DEPLOYMENT"],
        "MigrationCandidateStatusEnum": "envmanager.services.migration.MigrationCandidate.STATUSES",
        "MigrationRunStatusEnum": "envmanager.models.MigrationRun.Status",
        "MigrationRunModeEnum": "envmanager.models.MigrationRun.Mode",
    },
}

# Behind HTTPS (production) set ENVMANAGER_HTTPS=true: secure cookies, HSTS and a redirect
# to https; `manage.py check --deploy` is then clean.
ENVMANAGER_HTTPS = env_bool("ENVMANAGER_HTTPS", env_bool("SECURE_COOKIES"))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = ENVMANAGER_HTTPS
CSRF_COOKIE_SECURE = ENVMANAGER_HTTPS
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
SECURE_SSL_REDIRECT = ENVMANAGER_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if ENVMANAGER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = ENVMANAGER_HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", ENVMANAGER_HTTPS)
if env_bool("ENVMANAGER_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
ENVMANAGER_CSP = os.environ.get("ENVMANAGER_CSP", "")
# Request bodies above this are refused (413-style error) before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 20000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
