"""Settings, read from the environment. See the configuration table in README.md."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from kombu import Exchange, Queue

from config.env import ConfigError, env_bool, env_float, env_int, env_list, env_str
from config.observability import logging_config, structlog_configure

# Lets admin and other generic classes be subscripted at run time, as the type stubs expect.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
logger = logging.getLogger("config")

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"  # noqa: S105 (only with DEBUG on)
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ConfigError("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django_prometheus",
    "accounts.admin_apps.StaffAdminConfig",  # django.contrib.admin with the two-factor site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "channels",
    "pagecache",
    "brokers",
    "marketdata",
    "live",
    "trustmetrics",
    "events",
    "accounts",
    "execution",
    "ninja",
    "api",
    "alerts",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.observability.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Header-only: the fast lane (pagecache/asgi.py HEADER_MIDDLEWARE) sends the same policy. django-csp's
    # middleware with the hashes of the stylesheets written into the pages (pagecache/inline.py).
    "pagecache.inline.InlineStyleCSPMiddleware",
    # Sets the device cookie of a successful log-in: the owner's own budget (accounts/login_limits.py).
    "accounts.login_limits.LoginDeviceMiddleware",
    # Last, as django-axes asks: it turns a refused log-in into its answer (429, Retry-After).
    "axes.middleware.AxesMiddleware",
    # Last: Prometheus counts the final responses (django-prometheus asks for it at the end).
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
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
        },
    },
]

# Database: SQLite by default so the demo runs anywhere; PostgreSQL when DATABASE_URL says so.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Behind PgBouncer in transaction mode server-side cursors break, so turn them off there.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("PGBOUNCER", False)
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("TEST_DATABASE_NAME", "") or None
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs several processes on one SQLite file (web, ingestor, aggregator, Celery):
    # WAL lets readers and a writer overlap, and writers wait their turn instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Whether Redis is used is said, never probed here (settings do no network I/O): production
# requires it; scripts/demo.sh probes and sets USE_REDIS=0 when none answers. Without Redis the site
# still runs, in one process: local-memory cache, in-memory channel layer and background threads
# instead of Celery. It is not a production mode, so it is said loudly.
USE_REDIS = env_bool("USE_REDIS", True)
REDIS_REQUIRED = env_bool("REDIS_REQUIRED", not DEBUG)
if not USE_REDIS:
    if REDIS_REQUIRED:
        raise ConfigError("USE_REDIS=0 needs REDIS_REQUIRED=0: production runs with Redis")
    print(
        "WARNING: USE_REDIS=0; SINGLE-PROCESS FALLBACK: local-memory cache, "
        "in-memory channel layer, background threads instead of Celery workers.",
        file=sys.stderr,
    )
# Every Redis client connects and reads with a timeout and draws from a bounded pool (common/redis.py):
# a frozen Redis costs a request at most this long, never minutes, and idle connections are released.
REDIS_CONNECT_TIMEOUT_S = env_float("REDIS_CONNECT_TIMEOUT_S", 1.0, minimum=0.05)
REDIS_TIMEOUT_S = env_float("REDIS_TIMEOUT_S", 1.0, minimum=0.05)
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 50, minimum=2)
# After Redis failed to answer, a process skips it for this long before trying again (common/redis.py).
REDIS_RETRY_AFTER_S = env_float("REDIS_RETRY_AFTER_S", 2.0, minimum=0.1)

CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "bw")
if USE_REDIS:
    CACHES: dict[str, Any] = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "TIMEOUT": 300,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "PARSER_CLASS": "redis.connection._HiredisParser",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT_S,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_S,
                # Blocking: a burst waits up to REDIS_TIMEOUT_S for a free connection instead of opening
                # more; the pool never holds more than REDIS_MAX_CONNECTIONS. Connections idle for 30 s
                # are checked before use, so a Redis-side idle `timeout` may close them safely.
                # After one failure the process fails fast for REDIS_RETRY_AFTER_S (common/redis.py).
                "CONNECTION_POOL_CLASS": "common.redis.BreakerConnectionPool",
                # One client object per process, not one per asyncio task (see the class).
                "CONNECTION_FACTORY": "common.redis.SharedClientFactory",
                "CONNECTION_POOL_KWARGS": {
                    "max_connections": REDIS_MAX_CONNECTIONS,
                    "timeout": REDIS_TIMEOUT_S,
                    "health_check_interval": 30,
                },
                # A cache that does not answer is a miss and a write that is skipped, never a 500: pages
                # render from the database, sessions (cached_db) read from the database. Outages are
                # logged once per trip by common.redis, not once per call.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
                        "socket_timeout": REDIS_TIMEOUT_S,
                        "max_connections": REDIS_MAX_CONNECTIONS,
                        "health_check_interval": 30,
                    }
                ],
                "prefix": f"{CACHE_KEY_PREFIX}:asgi",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": CACHE_KEY_PREFIX}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Celery: one app, settings under the CELERY_ namespace.
CELERY_BROKER_URL = REDIS_URL if USE_REDIS else "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = f"{CACHE_KEY_PREFIX}-default"
# Page regenerations have their own queue and worker (deploy/: `worker-pages`, `-Q <prefix>-pages`):
# after an admin save or a new score they must not wait behind score recomputes, reports or the
# periodic prerender. A worker started without -Q (the demo's, the tests') takes both queues.
PAGECACHE_QUEUE = f"{CACHE_KEY_PREFIX}-pages"
# Each queue its own exchange and routing key, so routing never rests on a binding shared with the
# default queue (Celery binds a queue declared without them under the default queue's key).
CELERY_TASK_QUEUES = tuple(
    Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (CELERY_TASK_DEFAULT_QUEUE, PAGECACHE_QUEUE)
)
CELERY_TASK_ROUTES = {"pagecache.tasks.pages_regenerate": {"queue": PAGECACHE_QUEUE}}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{CACHE_KEY_PREFIX}:celery:",
    "visibility_timeout": 3600,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    "socket_timeout": max(REDIS_TIMEOUT_S, 10.0),  # above the worker's BRPOP wait (kombu polls every 1 s)
    "max_connections": REDIS_MAX_CONNECTIONS,
    "health_check_interval": 30,
}
# A task that hangs is stopped rather than holding a worker forever (soft: an exception it can catch).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT_S", 600, minimum=10)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "pages-prerender": {
        "task": "pagecache.tasks.pages_prerender_all",
        "schedule": env_int("PAGES_PRERENDER_EVERY_S", 300, minimum=10),
    },
}
# TrustMetrics: rescore every few minutes from stored daily sums; rebuild the whole window nightly.
TRUST_RECOMPUTE_EVERY_S = env_int("TRUST_RECOMPUTE_EVERY_S", 300, minimum=60)
CELERY_BEAT_SCHEDULE["trust-recompute"] = {
    "task": "trustmetrics.tasks.trust_recompute",
    "schedule": TRUST_RECOMPUTE_EVERY_S,
}
CELERY_BEAT_SCHEDULE["trust-recompute-full"] = {
    "task": "trustmetrics.tasks.trust_recompute_full",
    "schedule": crontab(hour=env_int("TRUST_NIGHTLY_HOUR_UTC", 2, minimum=0), minute=15),
}
# Event reports: written once each high-impact release's window has closed.
CELERY_BEAT_SCHEDULE["event-reports"] = {
    "task": "events.tasks.event_reports_enqueue",
    "schedule": env_int("EVENT_REPORTS_EVERY_S", 300, minimum=60),
}
# How background page regeneration runs: "celery" with Redis, "thread" in the fallback.
PAGECACHE_BACKGROUND = env_str("PAGECACHE_BACKGROUND", "celery" if USE_REDIS else "thread")
# Off only for measuring: every request then renders (bench.pages' uncached baseline).
PAGECACHE_ENABLED = env_bool("PAGECACHE_ENABLED", True)
# Each web process may answer from its own copy of a fresh page for this long (0 turns it off).
PAGECACHE_LOCAL_S = env_float("PAGECACHE_LOCAL_S", 0.5, minimum=0)
PAGECACHE_REVALIDATE_S = env_int("PAGECACHE_REVALIDATE_S", 300, minimum=1)
PAGECACHE_STALE_S = env_int("PAGECACHE_STALE_S", 86400, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "live:board"
LOGOUT_REDIRECT_URL = "brokers:home"
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 3600, minimum=300)

# Email: printed to the console unless EMAIL_HOST is set, then sent over SMTP.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "BrokerWatch <no-reply@localhost>")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Hashed names never change content, so whitenoise can let browsers keep them for a year.
WHITENOISE_MAX_AGE = 31536000 if not DEBUG else 0

# Security. HTTPS=1 (the default with DEBUG off) turns on everything `check --deploy` asks for.
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Logs: one JSON object per line in every process (structlog), with the request or task id bound.
LOG_JSON = env_bool("LOG_JSON", True)
LOGGING = logging_config(level=env_str("LOG_LEVEL", "INFO"), json=LOG_JSON)
structlog_configure()

# Behind the edge (nginx, deploy/nginx.conf): the peers whose X-Real-IP / X-Forwarded-For are believed
# (addresses or networks, comma-separated). Empty: the peer address is the client (nothing in front).
TRUSTED_PROXY_IPS = env_list("TRUSTED_PROXY_IPS", [])
# /metrics (Prometheus) answers only these peers; nginx refuses it from outside anyway.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])

# The demo (scripts/demo.sh, or DEBUG) may keep conveniences production must not: the default admin
# URL and admin log-in without a second factor.
DEMO = env_bool("DEMO", DEBUG)

# The admin's URL, from the environment (as cookiecutter-django does): a guessable /admin/ invites
# password spraying. Production refuses the default; the demo keeps it.
ADMIN_URL = (env_str("ADMIN_URL", "") or ("admin/" if DEMO else "")).strip("/") + "/"
if ADMIN_URL == "/":
    raise ConfigError("ADMIN_URL must be set when DEBUG is off (e.g. ADMIN_URL=staff-4f9c2a/)")
if ADMIN_URL == "admin/" and not DEMO:
    raise ConfigError("ADMIN_URL must not be the default admin/ in production")
# Staff need a TOTP code (django-otp) as well as the password to use the admin.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", not DEMO)
OTP_TOTP_ISSUER = "BrokerWatch"

# Log-in limits, on the site's and the admin's log-in alike: progressive delays, never a lock
# (accounts/login_limits.py, through django-axes' backend, signals and middleware; counters in Redis, shared
# by every web process). Failures of one account from one client address (LOGIN_FAILURE_LIMIT) and, apart
# and higher, of one address for any account (LOGIN_IP_FAILURE_LIMIT) are free up to the limit; then each
# attempt waits LOGIN_DELAY_S, doubled with every further failure, at most LOGIN_DELAY_MAX_S. A client that
# logged in to the account before (its device cookie, or its address) has its own, looser budget
# (LOGIN_KNOWN_FAILURE_LIMIT), so a guesser elsewhere never slows the owner. The client address is
# common.http.client_ip's (a proxy's X-Forwarded-For only from TRUSTED_PROXY_IPS).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "accounts.login_limits.LoginLimitHandler"
AXES_CLIENT_IP_CALLABLE = "accounts.login_limits.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.login_limits.lockout_response"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a refused attempt is flagged, not counted
AXES_VERBOSE = False
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 50, minimum=1)
LOGIN_KNOWN_FAILURE_LIMIT = env_int("LOGIN_KNOWN_FAILURE_LIMIT", 20, minimum=1)
# The first wait is longer than a log-in request takes even on a loaded server, or it would slow nobody.
LOGIN_DELAY_S = env_float("LOGIN_DELAY_S", 30.0, minimum=0.001)
LOGIN_DELAY_MAX_S = env_float("LOGIN_DELAY_MAX_S", 900.0, minimum=1.0)
LOGIN_FAILURE_MEMORY_S = env_int("LOGIN_FAILURE_MEMORY_S", 86400, minimum=60)  # counters forgotten after this
LOGIN_KNOWN_FOR_S = env_int("LOGIN_KNOWN_FOR_S", 90 * 86400, minimum=3600)  # a client stays known this long

# Content-Security-Policy (django-csp; Django 5.2 has none of its own): only this site's own scripts,
# styles, images and sockets; no inline script, no inline style but the site's own stylesheets named by
# their hashes (added by pagecache.inline.InlineStyleCSPMiddleware), no plugins, no framing, forms post here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Market data (marketdata/: feeds, ingestors, tick stream, spread history) -----------------------------
LIVE_STREAM_SHARDS = env_int("LIVE_STREAM_SHARDS", 4, minimum=1)  # tick streams, partitioned by instrument
LIVE_SIM_SEED = env_int("LIVE_SIM_SEED", 42)
LIVE_SIM_QUOTES_PER_S = env_int("LIVE_SIM_QUOTES_PER_S", 1, minimum=1)  # per broker and instrument
# Live board: a WebSocket client whose socket holds more than this many unsent bytes gets nothing
# new (its outbox keeps conflating); still so after LIVE_SLOW_DROP_S, it is dropped (close 4008).
LIVE_SLOW_HOLD_BYTES = env_int("LIVE_SLOW_HOLD_BYTES", 256 * 1024, minimum=1024)
LIVE_SLOW_DROP_S = env_float("LIVE_SLOW_DROP_S", 10.0, minimum=0.1)
# 0: the live fan-out uses only public library APIs (slower; live/transport.py). For tests and emergencies.
LIVE_TRANSPORT_FAST = env_bool("LIVE_TRANSPORT_FAST", True)
# Threads each web process keeps for requests that reach Django (config/handler.py); 0: a new thread per
# request, Django's own way.
WEB_REQUEST_THREADS = env_int("WEB_REQUEST_THREADS", 16, minimum=0)
LIVE_STALE_AFTER_S = env_int("LIVE_STALE_AFTER_S", 5, minimum=1)  # no quote or heartbeat for this long: stale
# Each ingestor's write-ahead file (quotes accepted while Redis is unreachable) lives here; keep it on local disk.
INGEST_WAL_DIR = env_str("INGEST_WAL_DIR", str(BASE_DIR / "var" / "ingest-wal"))
LIVE_RETENTION_1M_DAYS = env_int("LIVE_RETENTION_1M_DAYS", 14, minimum=0)  # 0 keeps bars forever
LIVE_RETENTION_1H_DAYS = env_int("LIVE_RETENTION_1H_DAYS", 400, minimum=0)
LIVE_RETENTION_1D_DAYS = env_int("LIVE_RETENTION_1D_DAYS", 0, minimum=0)
CELERY_BEAT_SCHEDULE["bars-rollup"] = {
    "task": "marketdata.tasks.bars_rollup_recent",
    "schedule": env_int("LIVE_ROLLUP_EVERY_S", 60, minimum=10),
}
CELERY_BEAT_SCHEDULE["bars-retention"] = {"task": "marketdata.tasks.bars_retention", "schedule": 3600}

# --- Public API (api/) and alerts (alerts/) ---------------------------------------------------------------
# Rate limits, counted in Redis (django-ratelimit) so every web process shares them: "N/s", "N/m", "N/h".
API_RATE_ANON = env_str("API_RATE_ANON", "60/m")
API_RATE_KEYED = env_str("API_RATE_KEYED", "1200/m")
RATELIMIT_USE_CACHE = "default"
# How long one rendered API answer is kept and may be kept by shared caches (0: render every request).
API_CACHE_S = env_int("API_CACHE_S", 30, minimum=0)
# Behind this many proxies the client address is the one they add to X-Forwarded-For (0: REMOTE_ADDR).
NINJA_NUM_PROXIES = env_int("API_NUM_PROXIES", 0, minimum=0)
# The alert process (manage.py alerts): no second notification for one alert within this many seconds.
ALERTS_COOLDOWN_S = env_int("ALERTS_COOLDOWN_S", 900, minimum=0)
ALERTS_RELOAD_S = env_float("ALERTS_RELOAD_S", 30.0, minimum=0.1)  # re-read the alerts this often (and on change)
ALERTS_SCORE_POLL_S = env_float("ALERTS_SCORE_POLL_S", 30.0, minimum=0.1)  # look for new trust scores this often
