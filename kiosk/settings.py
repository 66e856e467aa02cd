"""Settings for the kiosk service.

Everything that differs between the embedded default and production comes from the
environment (see README, "Production"):

- ``DATABASE_URL``: PostgreSQL through psycopg 3 (``postgres://user@host:5432/db``);
  unset means SQLite in ``var/``.
- ``REDIS_URL``: the Channels layer and the Celery broker; unset means the in-memory
  channel layer, Celery tasks run eagerly and the media engine runs inside daphne.
- ``KIOSK_EMBEDDED``: ``0`` for production (every secret from the environment, TLS behind the
  proxy), ``1`` for the embedded default; unset means embedded only when neither
  ``DATABASE_URL`` nor ``REDIS_URL`` is set, else the service refuses to start.
- ``DJANGO_SECRET_KEY``, ``AUDIT_CHECKPOINT_KEY``, ``AUDIT_PII_KEY``: required in production;
  generated into ``$KIOSK_VAR_DIR/secrets`` by the embedded default.
- ``PROVENANCE_KEY``: the invisible mark's keys; required in production; generated into
  ``$KIOSK_VAR_DIR/provenance.key`` by the embedded default.
"""

import datetime as dt
import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from kiosk import secrets
from kiosk.database_url import parse_database_url
from kiosk.redis_urls import parse_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KIOSK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def deployment_mode() -> bool:
    """True for the embedded default, False for production (``KIOSK_EMBEDDED=0``).

    Fails closed: the embedded default (generated secrets, no TLS requirements) is taken
    only when asked for (``KIOSK_EMBEDDED=1``) or when no external service is configured;
    with ``DATABASE_URL`` or ``REDIS_URL`` and no explicit mode the service refuses to start.
    """
    raw = os.environ.get("KIOSK_EMBEDDED", "").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    if raw:
        raise ImproperlyConfigured(f"KIOSK_EMBEDDED must be 1 or 0, not {raw!r}")
    external = [name for name in ("DATABASE_URL", "REDIS_URL") if os.environ.get(name)]
    if external:
        raise ImproperlyConfigured(
            f"{' and '.join(external)} set but KIOSK_EMBEDDED is not: set KIOSK_EMBEDDED=0 for "
            "production (with DJANGO_SECRET_KEY, AUDIT_CHECKPOINT_KEY and AUDIT_PII_KEY; see "
            "deploy/kiosk.env.example) or KIOSK_EMBEDDED=1 to run the embedded default "
            "(generated secrets, no TLS) on these services"
        )
    return True


EMBEDDED = deployment_mode()
DEBUG = env_bool("DJANGO_DEBUG", default=False)
if DEBUG and not EMBEDDED:
    raise ImproperlyConfigured("DJANGO_DEBUG=1 is refused when KIOSK_EMBEDDED=0")
# Production: from the environment. Embedded default: generated on first run into
# $KIOSK_VAR_DIR/secrets (mode 0600) and reused (docs/security.md, "Rotating secrets").
SECRET_KEY = secrets.from_env_or_generated(
    EMBEDDED, VAR_DIR, "DJANGO_SECRET_KEY", "it signs sessions and CSRF tokens"
)
# Old keys still accepted for a while after a rotation (comma separated; docs/security.md).
SECRET_KEY_FALLBACKS = [
    k.strip() for k in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
]

ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

# --- HTTPS behind the proxy (production) ---------------------------------------------------
# nginx terminates TLS and says so in X-Forwarded-Proto (deploy/nginx/kiosk.conf); it must
# overwrite any such header from the client. `manage.py check --deploy` is clean with these.
if not EMBEDDED:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A staff login lasts a working day at most.
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_COOKIE_AGE", str(10 * 3600)))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "kiosk",
    "consent",
    "media_engine.apps.MediaEngineConfig",
    "kiosk.dashboard",
    "kiosk.provenance",
    "kiosk.portal.apps.PortalConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kiosk.csp.ContentSecurityPolicyMiddleware",
    # Static files from daphne itself (embedded default and small sites); nginx may serve
    # STATIC_ROOT directly in front of it (deploy/nginx).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "kiosk.dashboard.second_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer (HTTP 429).
    "axes.middleware.AxesMiddleware",
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
    # One host, or several with ?target_session_attrs=read-write (kiosk/database_url.py).
    DATABASES = {"default": parse_database_url(DATABASE_URL, conn_max_age=60)}
    # A connection that died with a PostgreSQL restart is replaced, not reused.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
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
REDIS_URL = os.environ.get("REDIS_URL", "")  # redis://… or sentinel://… (kiosk/redis_urls.py)
REDIS_TARGET = parse_redis_url(REDIS_URL) if REDIS_URL else None
REDIS_SOCKET_TIMEOUT_S = 30.0


def redis_channel_layer(url: str, **config: object) -> dict:
    """The Redis channel layer for ``url`` (tests use it with a prefix of their own).

    redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis'
    5 s BZPOPMIN: an idle ``receive()`` then dies with "Timeout reading from ...". The
    socket timeout must exceed the block time.
    """
    host = parse_redis_url(url).channel_layer_host(socket_timeout=REDIS_SOCKET_TIMEOUT_S)
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [host],
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
# How long ICE + DTLS may take before a worker gives the slot back ("ice_failed").
MEDIA_ENGINE_CONNECT_TIMEOUT_S = float(os.environ.get("MEDIA_ENGINE_CONNECT_TIMEOUT_S", "6"))
# Test-only: make the media engine offer 127.0.0.1 as a host candidate (aioice leaves
# loopback out), needed on machines whose only interface is loopback.
MEDIA_ENGINE_LOOPBACK_CANDIDATES = env_bool("MEDIA_ENGINE_LOOPBACK_CANDIDATES", default=False)
# STUN/TURN servers handed to both peers, as RTCIceServer JSON.
ICE_SERVERS = json.loads(os.environ.get("ICE_SERVERS", "[]"))

# --- Kiosk devices, signaling limits and TURN (docs/security.md) -------------------------
# How long an enrolment link works, and how often a device's credential is renewed.
KIOSK_ENROLMENT_TTL_S = int(os.environ.get("KIOSK_ENROLMENT_TTL_S", "900"))
KIOSK_DEVICE_ROTATE_AFTER_S = int(os.environ.get("KIOSK_DEVICE_ROTATE_AFTER_S", str(30 * 86400)))
KIOSK_DEVICE_COOKIE_MAX_AGE_S = int(
    os.environ.get("KIOSK_DEVICE_COOKIE_MAX_AGE_S", str(400 * 86400))
)
# A kiosk's one-call claim that nobody refreshed for this long is free again.
KIOSK_CALL_STALE_S = float(os.environ.get("KIOSK_CALL_STALE_S", "20"))
# Remote ICE candidates: allowed networks (CIDRs; empty = any ordinary unicast address) and
# the media workers' own networks, refused unless KIOSK_NETWORKS names them.
KIOSK_NETWORKS = [n for n in os.environ.get("KIOSK_NETWORKS", "").split(",") if n.strip()]
MEDIA_WORKER_NETWORKS = [
    n for n in os.environ.get("MEDIA_WORKER_NETWORKS", "").split(",") if n.strip()
]
# [count, window seconds] per kiosk and per client address (kiosk/limits.py).
KIOSK_RATE_LIMITS = {
    "connect_kiosk": [60, 60],
    "connect_address": [120, 60],
    "consent_kiosk": [12, 60],
    "consent_address": [30, 60],
    **json.loads(os.environ.get("KIOSK_RATE_LIMITS", "{}")),
}
# The rate counters: shared through Redis when there is one, else this process's memory.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "limits": (
        REDIS_TARGET.cache_config(KEY_PREFIX="kiosk-limits")
        if REDIS_TARGET
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits"}
    ),
}
# TURN with short-lived credentials (coturn's use-auth-secret): the shared secret and the
# TURN URLs handed to enrolled kiosks, each call with a username valid this long.
TURN_SECRET = os.environ.get("TURN_SECRET", "")
TURN_URLS = [u for u in os.environ.get("TURN_URLS", "").split(",") if u.strip()]
TURN_CREDENTIAL_TTL_S = int(os.environ.get("TURN_CREDENTIAL_TTL_S", "3600"))
# Extra origins (scheme://host[:port]) allowed on the WebSockets besides the page's own.
WEBSOCKET_ALLOWED_ORIGINS = [
    o for o in os.environ.get("WEBSOCKET_ALLOWED_ORIGINS", "").split(",") if o.strip()
]

# --- Celery ------------------------------------------------------------------------------
# The broker is REDIS_URL's Redis unless CELERY_BROKER_URL names another one.
# A sentinel:// REDIS_URL becomes kombu's sentinel transport with its master name.
_BROKER_FROM_REDIS, _BROKER_SENTINEL_OPTIONS = (
    REDIS_TARGET.celery_broker() if REDIS_TARGET else ("", {})
)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _BROKER_FROM_REDIS or "memory://"
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
    **(_BROKER_SENTINEL_OPTIONS if not os.environ.get("CELERY_BROKER_URL") else {}),
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
# Key that signs the chain's checkpoints, head and retention anchors (hex or text): from
# the environment in production, generated into the var directory by the embedded default
# (never derived from the secret key).
AUDIT_CHECKPOINT_KEY = secrets.from_env_or_generated(
    EMBEDDED, VAR_DIR, "AUDIT_CHECKPOINT_KEY", "it signs the audit chain's checkpoints"
)
# Retired checkpoint keys (comma separated) that still verify what they signed before a
# rotation (docs/security.md); only AUDIT_CHECKPOINT_KEY signs.
AUDIT_CHECKPOINT_RETIRED_KEYS = os.environ.get("AUDIT_CHECKPOINT_RETIRED_KEYS", "")
# Key of the keyed hashes that stand for personal identifiers in the audit trail.
AUDIT_PII_KEY = secrets.from_env_or_generated(
    EMBEDDED, VAR_DIR, "AUDIT_PII_KEY", "it hashes personal identifiers in the audit trail"
)
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

# --- Provenance mark (media_engine/provenance, docs/provenance.md) -------------------------
# Keys of the invisible mark in every fused frame: "id:secret" (secret >= 32 characters)
# separated by commas, the current key first, older ones after it so that their marks stay
# verifiable. Production must set it; the embedded default generates one into
# PROVENANCE_KEY_FILE on first use.
PROVENANCE_KEY = os.environ.get("PROVENANCE_KEY", "")
if not PROVENANCE_KEY and not EMBEDDED:
    raise ImproperlyConfigured(
        "PROVENANCE_KEY must be set when KIOSK_EMBEDDED=0 (it keys the provenance mark): "
        "id:secret pairs, e.g. k1:$(python -c 'import secrets; print(secrets.token_hex(32))')"
    )
PROVENANCE_KEY_FILE = Path(os.environ.get("PROVENANCE_KEY_FILE", VAR_DIR / "provenance.key"))
# The name verifications report (and that goes into every session's tag).
PROVENANCE_INSTALLATION = os.environ.get("PROVENANCE_INSTALLATION", "kiosk-service")
# POST /provenance/verify: verifications per staff member per minute, and the largest upload.
PROVENANCE_VERIFY_PER_MINUTE = int(os.environ.get("PROVENANCE_VERIFY_PER_MINUTE", "10"))
PROVENANCE_MAX_UPLOAD_BYTES = int(os.environ.get("PROVENANCE_MAX_UPLOAD_BYTES", str(20 << 20)))

# --- Customer-service portal (kiosk/portal, docs/portal.md) --------------------------------
# A waiting customer whose socket has not been seen for this long leaves the queue.
PORTAL_QUEUE_STALE_S = int(os.environ.get("PORTAL_QUEUE_STALE_S", "45"))
# How long an agent's one-time link for a customer's own browser stays usable.
PORTAL_LINK_TTL_S = int(os.environ.get("PORTAL_LINK_TTL_S", "86400"))
# Added to the measured video pipeline delay when holding back the agent's voice: how much
# slower video is than audio outside the worker (the agent's video encoder, the customer's
# buffers); may be negative. The hold is this plus the pipeline delay minus the audio's wait
# in the worker's receive buffer, never below 0 (media_engine/lipsync.py).
PORTAL_AUDIO_EXTRA_MS = float(os.environ.get("PORTAL_AUDIO_EXTRA_MS", "0"))
# Hold the agent's voice back to the video (off only for the bench baseline).
PORTAL_LIPSYNC = os.environ.get("PORTAL_LIPSYNC", "1") != "0"

# --- Auth, i18n, static ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): a username at one address is locked out after
# AXES_FAILURE_LIMIT failed logins for AXES_COOLOFF_MINUTES (audited as staff.locked_out).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "kiosk.dashboard.login_security.client_address"
AXES_VERBOSE = False
# Second factor (django-otp, TOTP) for every staff user who can act (kiosk.dashboard.
# second_factor); the issuer names this service in the authenticator app.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Kiosk operations")
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
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # KIOSK_LOG_FORMAT=json: one JSON object a line with the session id (kiosk/logformat.py)
        "json": {"()": "kiosk.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("KIOSK_LOG_FORMAT") == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("KIOSK_LOG_LEVEL", "INFO")},
    "loggers": {"aioice": {"level": "WARNING"}, "aiortc": {"level": "WARNING"}},
}
