"""Settings for Smart Licensing Lab.

Everything that differs between machines comes from the environment through
the typed parsers in config/env.py. Defaults run the lab with nothing else
installed: SQLite and a filesystem Celery broker under var/, and e-mail kept
in the lab's own mailbox.

LAB_PROFILE selects a profile: "development" (default), "test" or
"production" (secure cookies, HSTS, CSP; `manage.py check --deploy` clean).
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LAB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PROFILE = env_choice("LAB_PROFILE", "development", ("development", "test", "production"))
PRODUCTION = PROFILE == "production"

DEBUG = env_bool("DEBUG", default=PROFILE == "development")
if PRODUCTION:
    SECRET_KEY = env_str("SECRET_KEY")  # required: no default in production
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters in production.")
else:
    SECRET_KEY = env_str("SECRET_KEY", "django-insecure-lab-only-key-do-not-use-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "licensing_core",
    "cssm_portal",
    "gateway_ui",
    "labs",
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
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "config.middleware.RequestIdMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lab.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share one SQLite file: wait for
    # locks instead of failing at once, and use WAL so readers don't block.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    # A file, not Django's in-memory default, so that the tests' Celery worker
    # subprocesses and concurrent threads share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-lab.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labs:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads of codes and lab files: the guide's codes are a few KiB at most.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
LAB_UPLOAD_MAX_BYTES = 64 * 1024
# Lab export files (a whole lab as JSON) are larger than any code.
LAB_FILE_MAX_BYTES = env_int("LAB_FILE_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)

# --- Celery -----------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: one folder for in and out, so any number
    # of processes on this machine share a queue without a broker server.
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The beat schedule is declared here and only here (issue: time).
_SWEEP_SECONDS = env_int("LAB_SWEEP_SECONDS", 60, minimum=1)
# A sweep's claim on an appliance (wall seconds): a worker killed mid-sweep
# holds it until it runs out, then the next sweep takes the appliance over.
LAB_SWEEP_LEASE_SECONDS = env_int("LAB_SWEEP_LEASE_SECONDS", 300, minimum=1)
# The sweep claims and fires due appliances in batches, their renewals in batch
# POSTs to the CSSM (gateway_ui/sweeps.py); off, one by one (the reference path
# the equivalence test compares against).
LAB_SWEEP_BATCH = env_bool("LAB_SWEEP_BATCH", default=True)
LAB_SWEEP_BATCH_SIZE = env_int("LAB_SWEEP_BATCH_SIZE", 1000, minimum=1)
# An exchange still pending this long after the page queued it is carried out
# by the recovery task (its message was lost, or the broker was down).
LAB_EXCHANGE_RECOVERY_SECONDS = env_int("LAB_EXCHANGE_RECOVERY_SECONDS", 120, minimum=1)
CELERY_BEAT_SCHEDULE: dict = {
    # Renewals, countdowns and alert e-mails of every lab, at each lab's time.
    "sweep-labs": {
        "task": "licensing_core.tasks.sweep_labs_task",
        "schedule": _SWEEP_SECONDS,
        "options": {"expires": max(_SWEEP_SECONDS - 1, 1)},
    },
    # Queued e-mails (the outbox); retried here when SMTP was down.
    "deliver-mail": {
        "task": "licensing_core.tasks.outbox_deliver_task",
        "schedule": env_int("LAB_MAIL_SECONDS", 30, minimum=1),
        "options": {"expires": max(env_int("LAB_MAIL_SECONDS", 30, minimum=1) - 1, 1)},
    },
    # Exchanges whose Celery message never reached a worker (broker down when
    # the page queued it): carried out from the pending state in the database.
    "recover-exchanges": {
        "task": "gateway_ui.tasks.exchanges_recover_task",
        "schedule": _SWEEP_SECONDS,
        "options": {"expires": max(_SWEEP_SECONDS - 1, 1)},
    },
    "lab-heartbeat": {
        "task": "licensing_core.tasks.heartbeat_task",
        "schedule": env_int("LAB_HEARTBEAT_SECONDS", 60, minimum=1),
        "options": {"expires": max(env_int("LAB_HEARTBEAT_SECONDS", 60, minimum=1) - 1, 1)},
    },
}

# --- E-mail -----------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
else:
    # Kept in the lab's Mailbox so demos need no mail server.
    EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "smart-licensing-lab@localhost")

# --- The lab ----------------------------------------------------------------
# Where appliances reach the portal's Smart Agent endpoints over HTTP.
CSSM_BASE_URL = env_str("CSSM_BASE_URL", "http://127.0.0.1:8000")
SMART_AGENT_VERSION = env_str("SMART_AGENT_VERSION", "1.3.7")
SMART_AGENT_HTTP_TIMEOUT = env_int("SMART_AGENT_HTTP_TIMEOUT", 10, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Security ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Serve static files straight from the app folders outside production, so the
# lab runs without collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
