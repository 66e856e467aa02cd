"""Settings for the kiosk service.

Everything that differs between the embedded default and production comes from the
environment (see README, "Production"):

- ``DATABASE_URL``: PostgreSQL through psycopg 3 (``postgres://user@host:5432/db``);
  unset means SQLite in ``var/``.
- ``REDIS_URL``: the Channels layer and the Celery broker; unset means the in-memory
  channel layer, Celery tasks run eagerly and the media engine runs inside daphne.
- ``DJANGO_SECRET_KEY``: required unless ``DJANGO_DEBUG=1``.
"""

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KIOSK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or env_bool("KIOSK_EMBEDDED", default=True):
        # The embedded default (one machine, loopback) gets a per-checkout key so that a
        # fresh clone runs with one command; production must set DJANGO_SECRET_KEY.
        SECRET_KEY = "embedded-default-not-for-production"
    else:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when KIOSK_EMBEDDED=0")

ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "kiosk",
    "consent",
    "media_engine.apps.MediaEngineConfig",
    "kiosk.dashboard",
    "kiosk.portal.apps.PortalConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from daphne itself (embedded default and small sites); nginx may serve
    # STATIC_ROOT directly in front of it (deploy/nginx).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kiosk.urls"
ASGI_APPLICATION = "kiosk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # IMMEDIATE: a transaction takes the write lock when it begins. With SQLite's
            # default (deferred) a transaction that read first and then writes gets "database
            # is locked" at once, without waiting, whenever another thread writes meanwhile
            # (in daphne: the signaling consumer and the media events' audit forwarder).
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer, broker and where the media engine runs -------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_SOCKET_TIMEOUT_S = 30.0


def redis_channel_layer(url: str, **config: object) -> dict:
    """The Redis channel layer for ``url`` (tests use it with a prefix of their own).

    redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis'
    5 s BZPOPMIN: an idle ``receive()`` then dies with "Timeout reading from ...". The
    socket timeout must exceed the block time.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}],
            "capacity": 1000,
            "expiry": 30,
            **config,
        },
    }


if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# In the embedded default the media engine runs inside daphne; production runs
# `python manage.py media_engine` processes and sets MEDIA_ENGINE_IN_PROCESS=0.
MEDIA_ENGINE_IN_PROCESS = env_bool("MEDIA_ENGINE_IN_PROCESS", default=not REDIS_URL)
MEDIA_ENGINE_MAX_SESSIONS = int(os.environ.get("MEDIA_ENGINE_MAX_SESSIONS", "4"))
# Test-only: make the media engine offer 127.0.0.1 as a host candidate (aioice leaves
# loopback out), needed on machines whose only interface is loopback.
MEDIA_ENGINE_LOOPBACK_CANDIDATES = env_bool("MEDIA_ENGINE_LOOPBACK_CANDIDATES", default=False)
# STUN/TURN servers handed to both peers, as RTCIceServer JSON.
ICE_SERVERS = json.loads(os.environ.get("ICE_SERVERS", "[]"))

# --- Celery ------------------------------------------------------------------------------
# The broker is REDIS_URL's Redis unless CELERY_BROKER_URL names another one.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Keep reconnecting to a broker that went away (the audit relay must not give up).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message a killed worker had taken goes back to the queue after this long (Redis
    # has no per-connection acks); every audit task is idempotent, so an early redelivery
    # only costs a duplicate that is stored once.
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT_S", "300")),
    "socket_connect_timeout": 5,
    # How often a worker looks for such messages (kombu's defaults: 10 s, every 10th look).
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL_S", "10")),
    "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
}
CELERY_BEAT_SCHEDULE = {
    "audit-sweep-outbox": {
        "task": "consent.sweep_outbox",
        "schedule": float(os.environ.get("AUDIT_SWEEP_INTERVAL_S", "30")),
    },
    "audit-checkpoint": {
        "task": "consent.write_checkpoint",
        "schedule": float(os.environ.get("AUDIT_CHECKPOINT_INTERVAL_S", "300")),
    },
    "audit-retention": {"task": "consent.apply_retention", "schedule": 24 * 3600.0},
    "consent-expiry": {
        "task": "consent.end_expired_sessions",
        "schedule": float(os.environ.get("CONSENT_EXPIRY_CHECK_S", "5")),
    },
}

# --- Audit trail and consent (consent app) -----------------------------------------------
# Key that signs the chain's checkpoints and retention anchors (hex or text). Production
# must set it; the embedded default derives one from the secret key.
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
if not AUDIT_CHECKPOINT_KEY and not env_bool("KIOSK_EMBEDDED", default=True):
    raise RuntimeError("AUDIT_CHECKPOINT_KEY must be set when KIOSK_EMBEDDED=0")
# Where signed checkpoints are exported (outside the database; keep it on other storage).
AUDIT_CHECKPOINT_DIR = Path(os.environ.get("AUDIT_CHECKPOINT_DIR", VAR_DIR / "audit-checkpoints"))
# Retention by policy (days): audit events at least ~6 months, consent proofs at least
# 3 years (the code refuses shorter periods).
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "190"))
CONSENT_PROOF_RETENTION_DAYS = int(os.environ.get("CONSENT_PROOF_RETENTION_DAYS", "1100"))
# How long a visitor's consent lasts; a live session is ended when it expires.
CONSENT_GRANT_TTL_S = int(os.environ.get("CONSENT_GRANT_TTL_S", "1800"))
# Who the record of processing names as controller (for the DPO's export).
CONSENT_CONTROLLER = os.environ.get("CONSENT_CONTROLLER", "The operator of this kiosk service")
# The media engine keeps its events here while the broker is unreachable.
AUDIT_SPOOL_DIR = Path(os.environ.get("AUDIT_SPOOL_DIR", VAR_DIR / "audit-spool"))

# --- Customer-service portal (kiosk/portal, docs/portal.md) --------------------------------
# A waiting customer whose socket has not been seen for this long leaves the queue.
PORTAL_QUEUE_STALE_S = int(os.environ.get("PORTAL_QUEUE_STALE_S", "45"))
# How long an agent's one-time link for a customer's own browser stays usable.
PORTAL_LINK_TTL_S = int(os.environ.get("PORTAL_LINK_TTL_S", "86400"))
# Added to the measured video pipeline delay when holding back the agent's voice (the video
# encoder's and jitter buffer's share; bench/av_sync.py measures what is left).
PORTAL_AUDIO_EXTRA_MS = float(os.environ.get("PORTAL_AUDIO_EXTRA_MS", "0"))
# Hold the agent's voice back by the video pipeline's delay (off only for the bench baseline).
PORTAL_LIPSYNC = os.environ.get("PORTAL_LIPSYNC", "1") != "0"

# --- Auth, i18n, static ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, even when empty
# Serve straight from the apps' static/ folders, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KIOSK_LOG_LEVEL", "INFO")},
    "loggers": {"aioice": {"level": "WARNING"}, "aiortc": {"level": "WARNING"}},
}
