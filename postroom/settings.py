"""Django settings for Postroom, read from POSTROOM_* environment variables.

docs/configuration.md documents every variable. The local defaults give a working site
with an embedded SQLite database under var/; POSTROOM_ENV=production refuses to start
without the settings a server must have.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from postroom.core import data_dir, env, limits
from postroom.ops.access import metrics_token_check

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION = env.is_production()
if PRODUCTION:
    env.require_for_production(["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])

DATA_DIR = Path(env.env_str("DATA_DIR") or BASE_DIR / "var").resolve()
# Password hashes, contacts and mail: umask 077 from here on, and an open directory closed.
data_dir.data_dir_make_private(DATA_DIR)
SECRET_KEY = env.master_secret(DATA_DIR, may_create=not PRODUCTION)
SECRET_KEY_FALLBACKS = env.env_list("SECRET_KEY_FALLBACKS", [])
DEBUG = env.env_bool("DEBUG", False)
ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # For its bundled Swagger UI files: the API docs must load without the internet.
    "ninja",
    "postroom.core",
    "postroom.audit",
    "postroom.queue",
    "postroom.oauth",
    "postroom.accounts",
    "postroom.company",
    "postroom.dkim",
    "postroom.outbox",
    "postroom.domains",
    "postroom.bounces",
    "postroom.inbox",
    "postroom.smtpd",
    "postroom.contacts",
    "postroom.compose",
    "postroom.audiences",
    "postroom.campaigns",
    "postroom.reports",
    "postroom.webhooks",
    "postroom.web",
    "postroom.runtime",
    "postroom.ops",
    # Counts failed logins and locks (postroom.accounts.lockouts).
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "postroom.accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a login that axes refused into the login page saying until when it is locked.
    "axes.middleware.AxesMiddleware",
    # Last, so its 413 page has the user and every header; it answers before any body is read.
    "postroom.core.middleware.RequestBodyLimitMiddleware",
]

ROOT_URLCONF = "postroom.urls"
WSGI_APPLICATION = "postroom.wsgi.application"
ASGI_APPLICATION = "postroom.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "postroom.web.context.sandbox",
                "postroom.web.context.administration",
            ],
        },
    },
]

_default_database = f"sqlite:///{DATA_DIR / 'postroom.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env.env_str("DATABASE_URL") or _default_database, conn_max_age=600
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Django's backend with a write turn the processes take in line (postroom/core/sqlite).
    DATABASES["default"]["ENGINE"] = "postroom.core.sqlite"
    # WAL lets the web server read while the worker writes; synchronous=FULL makes a commit
    # durable before Postroom says a message is accepted.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # Each web thread keeps its connection between requests, as for the other databases:
    # opening one reads SQLite's whole schema, ≈ 1 ms, as much as the rest of an API send.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    # A file, not memory, so tests can run real worker processes against the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-postroom.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Failed logins (django-axes); docs/configuration.md says what each variable means.
AUTHENTICATION_BACKENDS = [
    # First, so that a locked login is refused before its password is even checked.
    "postroom.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A login name and a client address are each locked on their own: guesses at one account
# from many addresses, and at many accounts from one address, are both stopped.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# 10 failures per 15 minutes leave room for typos and allow fewer than 1,000 guesses a day at
# an account (NIST SP 800-63B §5.2.2 accepts up to 100 failures before a lock).
AXES_FAILURE_LIMIT = env.env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env.env_int("LOGIN_LOCK_MINUTES", 15))
# A try during a lock does not push its end back, so the time the login page shows holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A good login does not clear failures (axes' default, kept on purpose): otherwise a user
# could clear their address's count between guesses at a colleague's password.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "postroom.web.views.login.lockout_response"
AXES_CLIENT_IP_CALLABLE = "postroom.accounts.client_address.client_address"
POSTROOM_TRUSTED_PROXIES = env.env_list("TRUSTED_PROXIES", [])
# Successful logins are already each user's "last login"; axes' own log of them only grows.
AXES_DISABLE_ACCESS_LOG = True

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("username", "display_name", "email")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = env.env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are served by WhiteNoise straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # aiosmtplib logs nothing secret, but mail.log at DEBUG would show AUTH exchanges.
        "mail.log": {"level": "WARNING"},
        # The webhook delivery log records each request; httpx's own INFO lines repeat it.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},  # Authlib's token requests (postroom.oauth)
        # flufl.bounce logs each of its 17 detectors at INFO for every bounce it reads.
        "flufl.bounce": {"level": "WARNING"},
    },
}

POSTROOM_HTTP_HOST = env.env_str("HTTP_HOST", "127.0.0.1")
POSTROOM_HTTP_PORT = env.env_int("HTTP_PORT", 8000)

# Outbox and delivery; docs/configuration.md says what each one means.
# Django's send_mail() from any code goes into the outbox like everything else.
EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"
POSTROOM_RETRY_FIRST_SECONDS = env.env_int("RETRY_FIRST_SECONDS", 300)
POSTROOM_RETRY_MAX_SECONDS = env.env_int("RETRY_MAX_SECONDS", 4000)
POSTROOM_RETRY_GIVE_UP_SECONDS = env.env_int("RETRY_GIVE_UP_SECONDS", 5 * 24 * 3600)
POSTROOM_MAX_MESSAGE_BYTES = env.env_int("MAX_MESSAGE_BYTES", 25 * 1024 * 1024)
# An API send carries attachments as base64 (4/3 of their size) plus the JSON around them.
DATA_UPLOAD_MAX_MEMORY_SIZE = (
    limits.base64_size(POSTROOM_MAX_MESSAGE_BYTES) + limits.FORM_SLACK_BYTES
)
POSTROOM_WORKER_LEASE_SECONDS = env.env_int("WORKER_LEASE_SECONDS", 600)
POSTROOM_WORKER_BATCH = env.env_int("WORKER_BATCH", 200)
# Administrators are alerted (log and email) when sending has been paused this long.
POSTROOM_PAUSE_ALERT_MINUTES = env.env_int("PAUSE_ALERT_MINUTES", 15)
# Contacts: the largest CSV file an import accepts.
POSTROOM_IMPORT_MAX_BYTES = env.env_int("IMPORT_MAX_BYTES", 50 * 1024 * 1024)
# Larger request bodies are refused before they are read (postroom.core.limits).
POSTROOM_MAX_REQUEST_BYTES = limits.request_body_limit_check(
    env.env_int(
        "MAX_REQUEST_BYTES",
        limits.request_body_limit(
            max_message_bytes=POSTROOM_MAX_MESSAGE_BYTES, import_max_bytes=POSTROOM_IMPORT_MAX_BYTES
        ),
    )
)
# DNS servers for the deliverability checks (postroom.core.dns); empty: /etc/resolv.conf's.
POSTROOM_DNS_SERVERS = env.env_list("DNS_SERVERS", [])
POSTROOM_CAPTURE_HOST = env.env_str("CAPTURE_HOST", "127.0.0.1")
POSTROOM_CAPTURE_PORT = env.env_int("CAPTURE_PORT", 8025)

# The SMTP listener (postroom smtpd, and inside postroom run): applications send through it
# with SMTP credentials. docs/smtp-listener.md says what each setting means.
POSTROOM_SMTPD_HOST = env.env_str("SMTPD_HOST", "127.0.0.1")
POSTROOM_SMTPD_PORT = env.env_int("SMTPD_PORT", 2587)  # STARTTLS required; 0: off
POSTROOM_SMTPD_TLS_PORT = env.env_int("SMTPD_TLS_PORT", 0)  # implicit TLS; 0: off
POSTROOM_SMTPD_PLAIN_PORT = env.env_int("SMTPD_PLAIN_PORT", 0)  # listed networks only; 0: off
# `postroom smtpd`'s processes on the same ports (SO_REUSEPORT): one per core helps.
POSTROOM_SMTPD_PROCESSES = env.env_int("SMTPD_PROCESSES", 1)
POSTROOM_SMTPD_CERT = env.env_str("SMTPD_CERT", "")  # empty: a self-signed one
POSTROOM_SMTPD_KEY = env.env_str("SMTPD_KEY", "")
POSTROOM_SMTPD_MAX_QUEUED = env.env_int("SMTPD_MAX_QUEUED", 1_000_000)
POSTROOM_SMTPD_MIN_FREE_MB = env.env_int("SMTPD_MIN_FREE_MB", 500)
# The site's address as recipients' mail programs reach it, for campaigns' unsubscribe and
# tracking links (https://postroom.example.com). Without it, campaigns are refused outside
# local mode; locally the links point at POSTROOM_HTTP_HOST:POSTROOM_HTTP_PORT.
POSTROOM_PUBLIC_URL = env.env_str("PUBLIC_URL", "")

# Reports (docs/reports.md): every query's time limit and row cap, the largest file mailed
# as an attachment (larger ones go as a signed link, valid this many days).
POSTROOM_REPORT_TIMEOUT_SECONDS = env.env_int("REPORT_TIMEOUT_SECONDS", 60)
POSTROOM_REPORT_MAX_ROWS = env.env_int("REPORT_MAX_ROWS", 100_000)
POSTROOM_REPORT_ATTACH_MAX_BYTES = env.env_int("REPORT_ATTACH_MAX_BYTES", 10 * 1024 * 1024)
POSTROOM_REPORT_LINK_DAYS = env.env_int("REPORT_LINK_DAYS", 7)

# /metrics (postroom.ops): off unless a bearer token is set; docs/deployment.md#metrics.
POSTROOM_METRICS_TOKEN = metrics_token_check(env.env_str("METRICS_TOKEN", ""))
