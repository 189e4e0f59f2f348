"""Settings shared by every environment, read from the process environment with django-environ."""
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from core.redis_sentinel import celery_broker_url, channel_layer_hosts, sentinels_parse

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

TIME_ZONE = env("TIME_ZONE", default="America/Sao_Paulo")
LANGUAGE_CODE = env("LANGUAGE_CODE", default="pt-br")
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "core",
    "inventory",
    "reservations",
    "notifications",
    "projections",
    "webhooks",
    "orders",
]

MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a login that django-axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Django's psycopg pool with CONN_MAX_AGE=0: persistent per-thread connections under
# Daphne exhaust PostgreSQL's max_connections at 32 concurrent requests.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/stockpulse")}
# Django's backend plus the fail-fast circuit and the retry of a pooled connection that died (core/postgresql).
DATABASES["default"]["ENGINE"] = "core.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"] = {
    "pool": {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        # How long a request waits for a busy pool before 503 (overload); not for a PostgreSQL that is down.
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        # The pool retries a lost connection with a growing delay, and gives up after this long; a new
        # request then makes it connect at once. Short, so that it is back within a second or two of
        # PostgreSQL, not a minute later.
        "reconnect_timeout": env.float("DB_POOL_RECONNECT_TIMEOUT", default=2.0),
    },
}
# PostgreSQL down (core/db.py DatabaseCircuit): a request that waited this long on the pool checks
# with a connection of its own (bounded by DB_PROBE_SECONDS) whether PostgreSQL answers; if not,
# every request is answered 503 at once for DB_DOWN_RETRY_SECONDS (its Retry-After), then one
# request checks again.
DB_DOWN_CHECK_SECONDS = env.float("DB_DOWN_CHECK_SECONDS", default=0.5)
DB_PROBE_SECONDS = env.float("DB_PROBE_SECONDS", default=1.0)
DB_DOWN_RETRY_SECONDS = env.float("DB_DOWN_RETRY_SECONDS", default=1.0)
# The ledger's reads are planned over every monthly partition: core.db.statements_prepared prepares them
# once per pooled connection. False behind a transaction-mode pooler that cannot keep prepared statements.
DATABASE_PREPARED_READS = env.bool("DATABASE_PREPARED_READS", default=True)
# A streaming replica (docs/scaling.md, "Read replica"): unset, every read goes to DATABASE_URL. Set, the
# GETs of the routes below read stock and projections there (core/db_routers.py); if the replica fails
# during one, that request runs again on the primary and the replica is left alone for the retry period.
# Not the snapshot a dashboard resyncs from: it must not be older than the events it saw.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_ROUTES = ["stock-list", "stock-detail", "estoque", "location-list", "projection-detail",
                           "projection-daily", "projection-ruptures", "projection-stats", "reorder-suggestion-list"]
DATABASE_REPLICA_APPS = ["inventory", "projections"]
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=5.0)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    # Django's own backend: our circuit (core/db.py) watches the primary only. The pool waits at most this
    # long for a replica that is down before the request falls back to the primary.
    DATABASES["replica"]["CONN_MAX_AGE"] = 0
    DATABASES["replica"]["OPTIONS"] = {"pool": {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2), "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_REPLICA_TIMEOUT", default=1.0), "reconnect_timeout": 2.0}}
    # With the pool, Django checks a connection as it leaves it (one round trip): after a restart of the
    # replica the idle ones are dead, and each would otherwise fail one request and skip the replica again.
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # Tests read the test database through this alias: no second test database is made.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["core.db_routers.ReplicaRouter"]
    # Innermost, so that a request it runs again on the primary repeats only the view.
    MIDDLEWARE.append("core.db_routers.ReplicaReadsMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Redis behind Sentinel (docs/scaling.md): "host:port,host:port" of the sentinels and the name of the master
# they watch. Set, every Redis client asks them for the master and follows a failover: the channel layer, the
# Celery broker (unless CELERY_BROKER_URL names one), and through core/cache.py the cache, the rate limits, the
# failed-login and token counters, the WebSocket tickets and the readiness check (none of them reads REDIS_URL then).
REDIS_SENTINELS = sentinels_parse(env("REDIS_SENTINELS", default=""))
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="stockpulse")
REDIS_SENTINEL_DB = env.int("REDIS_SENTINEL_DB", default=0)
# Redis holds no truth (rate limits, the channel layer, the cache): a call to it gives up after this
# long, so an unreachable or hung Redis degrades a request instead of holding it (docs/architecture.md).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)

CACHES = {
    "default": {
        "BACKEND": "core.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="stockpulse"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT},
    }
}
# Failed logins and failed bearer tokens (core/security.py): the same Redis with short socket timeouts,
# so an unreachable Redis fails a check fast and the check lets the request through (fail open).
CACHES["security"] = {**CACHES["default"], "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}

# The channel layer shares the Redis server with Celery but not its keys: a prefix
# keeps them apart. Pub/Sub fans a group send out as one PUBLISH whatever the group size.
CHANNEL_LAYER_PREFIX = env("CHANNEL_LAYER_PREFIX", default="stockpulse.ws")
# Redis Pub/Sub (the default, chosen by measurement: docs/bench-ws.md) or the channels-redis core layer
# (lists per channel). Either way each Daphne process holds one channel in each group (core/fanout.py),
# so a batch is one message per group and process, whatever the number of sockets.
CHANNEL_LAYER_BACKEND = env("CHANNEL_LAYER_BACKEND", default="pubsub")
_LAYER_HOSTS = channel_layer_hosts(REDIS_SENTINELS, REDIS_SENTINEL_MASTER, db=REDIS_SENTINEL_DB) \
    if REDIS_SENTINELS else [REDIS_URL]
if CHANNEL_LAYER_BACKEND == "core":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        "hosts": _LAYER_HOSTS, "prefix": CHANNEL_LAYER_PREFIX,
        # A process's channel receives every batch of its groups: room for a burst of them (the default,
        # 100, drops silently past it), and no older than 10 s (a dashboard that late resyncs anyway).
        "capacity": 1000, "expiry": 10,
    }}}
elif CHANNEL_LAYER_BACKEND == "pubsub":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                  "CONFIG": {"hosts": _LAYER_HOSTS, "prefix": CHANNEL_LAYER_PREFIX}}}
else:
    raise ImproperlyConfigured(f"CHANNEL_LAYER_BACKEND must be 'pubsub' or 'core', not {CHANNEL_LAYER_BACKEND!r}")
# Realtime (docs/realtime.md): WebSocket tickets live seconds and serve once; heartbeats let
# both ends notice a dead socket; a publish never holds a request longer than the timeout.
WS_TICKET_TTL_SECONDS = env.int("WS_TICKET_TTL_SECONDS", default=30)
WS_HEARTBEAT_SECONDS = env.float("WS_HEARTBEAT_SECONDS", default=15.0)
WS_MAX_SUBSCRIBED_CODES = env.int("WS_MAX_SUBSCRIBED_CODES", default=500)
REALTIME_PUBLISH_TIMEOUT = env.float("REALTIME_PUBLISH_TIMEOUT", default=2.0)

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "/admin/login/"

# Brute-force protection (README, "Security"). The client's address is the peer's, or with this many
# reverse proxies in front, the X-Forwarded-For entry the farthest of them wrote: entries further left
# are whatever the client sent. 0 ignores X-Forwarded-For (a client could claim any address with it).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Staff logins (django-axes): after LOGIN_FAILURE_LIMIT failures for one username, or from one address,
# logins of that username or from that address are refused, the right password included, for
# LOGIN_LOCKOUT_MINUTES after the last counted failure.
AUTHENTICATION_BACKENDS = [
    "core.security.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "core.security.FailOpenAxesCacheHandler"
AXES_CACHE = "security"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# Failures while locked out neither count nor push the end of the lockout further away.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.security.request_client_address"
AXES_LOCKOUT_CALLABLE = "core.security.login_lockout_response"
# Attempts live in Redis, not in axes' tables: its admin pages would stay empty.
AXES_ENABLE_ADMIN = False
# API clients (core/auth.py): TOKEN_FAILURE_LIMIT unknown bearer tokens from one address within
# TOKEN_FAILURE_WINDOW_SECONDS lock that address out of token authentication for TOKEN_LOCKOUT_SECONDS.
TOKEN_FAILURE_LIMIT = env.int("TOKEN_FAILURE_LIMIT", default=20)
TOKEN_FAILURE_WINDOW_SECONDS = env.int("TOKEN_FAILURE_WINDOW_SECONDS", default=300)
TOKEN_LOCKOUT_SECONDS = env.int("TOKEN_LOCKOUT_SECONDS", default=300)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.jsoninput.InputJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "client": env("API_RATE_LIMIT", default="6000/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.StockPulseAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Anonymous rate limits count per address the same way as the brute-force limits.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "StockPulse API",
    "DESCRIPTION": "Real-time sellable stock: inventory, reservations, projections and alerts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the installed sidecar package: the docs work with no internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["core.schema.documented_endpoints_hook"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.error_responses_hook",
    ],
    # Choice sets whose field names ("kind", "status") other components use for other choices.
    "ENUM_NAME_OVERRIDES": {
        "PlannedKindEnum": "projections.models.PlannedKind",
        "PlannedStatusEnum": "projections.models.PlannedStatus",
    },
}

# Celery: the broker is Redis unless CELERY_BROKER_URL says otherwise (amqp:// works too).
# Empty counts as unset (a compose file's `CELERY_BROKER_URL: ${CELERY_BROKER_URL:-}`), never as Celery's amqp default.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or (
    celery_broker_url(REDIS_SENTINELS, db=REDIS_SENTINEL_DB) if REDIS_SENTINELS else REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Tasks are sent after commit, and durable work has its outbox rows and beat sweeps: with the broker
# down a send must fail fast (then it is logged and left to the sweep) rather than hold the request
# whose write already committed. One quick retry, then give up; socket timeouts above the transport's
# 1 s BRPOP, so the workers' long polls are not cut.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 1.0, "socket_timeout": 2.0}
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Four queues, so a backlog in one never holds up another (docs/alerts.md, "Queues and processes"):
# - alerts: Telegram alert delivery, its sweep and bot replies. A driver is waiting on these, so they
#   get a worker of their own (Procfile `alerts`) that nothing else can fill up.
# - orders: order processing and the stuck-order sweep, on a worker of their own (Procfile `orders`): a
#   storefront is waiting, and an ERP import once queued thousands of webhook sends ahead of them.
# - projections: recomputes, the fallback, the nightly rebuild and the risk events of a large recompute.
#   A first full build queues thousands of them; on a queue of their own the main worker takes them in
#   turn with the default queue (the Redis transport reads its queues round-robin) instead of FIFO.
# - celery (default): webhooks, reservation expiry and housekeeping such as the Telegram update prune.
#   Short tasks nobody would want stuck behind a projection build; any task without a route lands here.
# Declaring them all means a worker started without -Q still consumes every queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
_QUEUE_NAMES = ("celery", "projections", "alerts", "orders")
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in _QUEUE_NAMES]
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ (docs/scaling.md): quorum queues, replicated over the cluster's nodes (Raft), so a node lost
    # loses no queued task. Topic exchanges, because with quorum queues Celery delays countdown tasks (the
    # alert and order retries) through RabbitMQ itself (native delayed delivery), which skips direct ones.
    CELERY_TASK_QUEUES = [Queue(name, Exchange(name, type="topic"), routing_key=name,
                                queue_arguments={"x-queue-type": "quorum"}) for name in _QUEUE_NAMES]
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
CELERY_TASK_ROUTES = {
    "notifications.tasks.alert_deliver_task": {"queue": "alerts"},
    "notifications.tasks.alert_outbox_sweep_task": {"queue": "alerts"},
    "notifications.tasks.telegram_update_process_task": {"queue": "alerts"},
    "notifications.tasks.telegram_updates_sweep_task": {"queue": "alerts"},
    "orders.tasks.order_process_task": {"queue": "orders"},
    "orders.tasks.orders_requeue_stuck_task": {"queue": "orders"},
    "projections.tasks.projection_recompute_task": {"queue": "projections"},
    "projections.tasks.projection_fallback_task": {"queue": "projections"},
    "projections.tasks.projection_rebuild_task": {"queue": "projections"},
    # It writes projected-stockout outbox rows for up to every product at risk: bulk work, not a delivery.
    "projections.tasks.projection_transitions_task": {"queue": "projections"},
}
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE["projections-fallback"] = {
    "task": "projections.tasks.projection_fallback_task", "schedule": 60.0,
}
# Yesterday's summaries go stale at midnight (store time zone = CELERY_TIMEZONE).
CELERY_BEAT_SCHEDULE["projections-nightly-rebuild"] = {
    "task": "projections.tasks.projection_rebuild_task", "schedule": crontab(hour=0, minute=5),
}

# Inventory
# The location every request that names none uses (docs/locations.md); created by the migrations.
DEFAULT_LOCATION_CODE = env("DEFAULT_LOCATION_CODE", default="PRINCIPAL").strip().upper()
DEFAULT_LOCATION_NAME = env("DEFAULT_LOCATION_NAME", default="Loja principal")
STOCK_DEFAULT_LOW_THRESHOLD = env.int("STOCK_DEFAULT_LOW_THRESHOLD", default=5)
STOCK_MAX_QUANTITY = env.int("STOCK_MAX_QUANTITY", default=1_000_000)
STOCK_LOOKUP_MAX_CODES = 500
# ERP import jobs (docs/orders-webhooks-import.md): a job still queued or running this long with no
# worker holding it is queued again by the sweep, up to IMPORT_MAX_ATTEMPTS runs in all.
IMPORT_REQUEUE_AFTER_SECONDS = env.int("IMPORT_REQUEUE_AFTER_SECONDS", default=60)
IMPORT_MAX_ATTEMPTS = env.int("IMPORT_MAX_ATTEMPTS", default=3)
CELERY_BEAT_SCHEDULE["stock-imports-requeue-stuck"] = {
    "task": "inventory.tasks.import_jobs_requeue_stuck_task",
    "schedule": env.float("IMPORT_SWEEP_EVERY_SECONDS", default=30.0),
}
# The ledger is partitioned by month (docs/ledger-partitioning.md): partitions for this month and the
# coming ones are made ahead, daily; a month without one lands in the default partition meanwhile.
LEDGER_PARTITION_MONTHS_AHEAD = env.int("LEDGER_PARTITION_MONTHS_AHEAD", default=3)
# The same daily task rewrites at most this many closed months (newest first) ordered by product and
# location, so a product's page reads few heap pages; 0 turns it off (the command still does it).
LEDGER_PARTITION_CLUSTER_PER_RUN = env.int("LEDGER_PARTITION_CLUSTER_PER_RUN", default=2)
CELERY_BEAT_SCHEDULE["ledger-partitions-ahead"] = {
    "task": "inventory.tasks.ledger_partitions_ensure_task", "schedule": crontab(hour=3, minute=17),
}

# Projections (see docs/projections.md)
PROJECTION_HORIZON_DAYS = env.int("PROJECTION_HORIZON_DAYS", default=28)
PROJECTION_MAX_DAYS = 90
PROJECTION_RISK_DAYS = env.int("PROJECTION_RISK_DAYS", default=7)
PROJECTION_INCLUDE_TENTATIVE = env.bool("PROJECTION_INCLUDE_TENTATIVE", default=True)
PROJECTION_FALLBACK_BATCH = env.int("PROJECTION_FALLBACK_BATCH", default=500)
PROJECTION_INLINE_MAX_PRODUCTS = env.int("PROJECTION_INLINE_MAX_PRODUCTS", default=0)
PROJECTION_PENDING_TTL = env.int("PROJECTION_PENDING_TTL", default=30)
# Demand estimates (see docs/projections.md, "Demand and reorder")
DEMAND_WINDOW_DAYS = env.int("DEMAND_WINDOW_DAYS", default=56)
DEMAND_BACKTEST_DAYS = 28
DEMAND_SMOOTHING = env.float("DEMAND_SMOOTHING", default=0.1)
DEMAND_WEEKDAY_PRIOR_DAYS = env.float("DEMAND_WEEKDAY_PRIOR_DAYS", default=2.0)
DEMAND_MIN_HISTORY_DAYS = env.int("DEMAND_MIN_HISTORY_DAYS", default=14)
REORDER_REVIEW_DAYS = env.int("REORDER_REVIEW_DAYS", default=7)
REORDER_SERVICE_LEVEL = env.float("REORDER_SERVICE_LEVEL", default=0.95)

# API clients are looked up by token once per this many seconds per process (0 = every request).
API_CLIENT_CACHE_SECONDS = env.float("API_CLIENT_CACHE_SECONDS", default=5.0)

# Reservations
RESERVATION_DEFAULT_TTL_SECONDS = env.int("RESERVATION_DEFAULT_TTL_SECONDS", default=15 * 60)
RESERVATION_MIN_TTL_SECONDS = 30
RESERVATION_MAX_TTL_SECONDS = 24 * 60 * 60
# Extensions never push expires_at further than this from the reservation's creation.
RESERVATION_MAX_LIFETIME_SECONDS = env.int("RESERVATION_MAX_LIFETIME_SECONDS", default=24 * 60 * 60)
RESERVATION_MAX_LINES = env.int("RESERVATION_MAX_LINES", default=100)
# Locations an "auto" cart may list in its preference order.
RESERVATION_MAX_LOCATIONS = env.int("RESERVATION_MAX_LOCATIONS", default=50)
RESERVATION_SWEEP_SECONDS = env.float("RESERVATION_SWEEP_SECONDS", default=10.0)
# The ASGI fast path for one-code reservations (reservations/fast_path.py) and its async connections per process.
RESERVATION_FAST_PATH = env.bool("RESERVATION_FAST_PATH", default=True)
ASYNC_DB_POOL_SIZE = env.int("ASYNC_DB_POOL_SIZE", default=4)
CELERY_BEAT_SCHEDULE["reservations-expire-due"] = {
    "task": "reservations.tasks.reservations_expire_due_task",
    "schedule": RESERVATION_SWEEP_SECONDS,
}

# Notifications
# Telegram Bot API: without a token alerts are still recorded and shown; delivery is skipped.
TELEGRAM_API_BASE = env("TELEGRAM_API_BASE", default="https://api.telegram.org")
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_BOT_USERNAME = env("TELEGRAM_BOT_USERNAME", default="StockPulseBot")
TELEGRAM_WEBHOOK_SECRET = env("TELEGRAM_WEBHOOK_SECRET", default="")
TELEGRAM_WEBHOOK_URL = env("TELEGRAM_WEBHOOK_URL", default="")
TELEGRAM_TIMEOUT = env.float("TELEGRAM_TIMEOUT", default=1.5)
# Quick retries within one delivery pass; an outage that outlasts them is retried by ALERT_RETRY_* below.
TELEGRAM_MAX_RETRIES = env.int("TELEGRAM_MAX_RETRIES", default=3)
# Retries of one delivery stop once this budget is spent, so a message lands within 2 s or is rescheduled.
TELEGRAM_RETRY_BUDGET = env.float("TELEGRAM_RETRY_BUDGET", default=2.0)
TELEGRAM_RATE_CHAT_SECONDS = env.float("TELEGRAM_RATE_CHAT_SECONDS", default=1.0)
TELEGRAM_RATE_GROUP_PER_MINUTE = env.int("TELEGRAM_RATE_GROUP_PER_MINUTE", default=20)
TELEGRAM_RATE_GLOBAL_PER_SECOND = env.int("TELEGRAM_RATE_GLOBAL_PER_SECOND", default=25)
ALERT_HYSTERESIS_MARGIN = env.int("ALERT_HYSTERESIS_MARGIN", default=2)
ALERT_LINK_TOKEN_HOURS = env.int("ALERT_LINK_TOKEN_HOURS", default=72)
ALERT_SWEEP_GRACE_SECONDS = env.float("ALERT_SWEEP_GRACE_SECONDS", default=3.0)
ALERT_CLAIM_SECONDS = env.float("ALERT_CLAIM_SECONDS", default=30.0)
ALERT_PROJECTION_DAYS = env.int("ALERT_PROJECTION_DAYS", default=7)
# A 5xx, timeout or connection error is an outage, not a verdict: the alert is tried again after an
# exponential backoff with jitter (base doubling, capped), and given up (dead) only once it has been
# failing for ALERT_GIVE_UP_AFTER seconds (6 h). 400 and 403 stay final.
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=2.0)
ALERT_RETRY_MAX_SECONDS = env.float("ALERT_RETRY_MAX_SECONDS", default=180.0)
ALERT_GIVE_UP_AFTER = env.float("ALERT_GIVE_UP_AFTER", default=6 * 60 * 60)
# A sendMessage our client timed out on is still listened to this long: if Telegram accepted it after
# all, that copy's message id is kept and later edits reach it too (docs/alerts.md).
TELEGRAM_LATE_ANSWER_SECONDS = env.float("TELEGRAM_LATE_ANSWER_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE["alert-outbox-sweep"] = {
    "task": "notifications.tasks.alert_outbox_sweep_task",
    "schedule": env.float("ALERT_SWEEP_EVERY_SECONDS", default=5.0),
}
# Updates the webhook stored but could not hand to Celery (broker down) are processed once it is back.
CELERY_BEAT_SCHEDULE["telegram-updates-sweep"] = {
    "task": "notifications.tasks.telegram_updates_sweep_task",
    "schedule": env.float("ALERT_SWEEP_EVERY_SECONDS", default=5.0),
}
# The buyers' daily Telegram digest of open reorder suggestions, at this hour and minute of the store's time
# zone (TIME_ZONE = CELERY_TIMEZONE); sent once per buyer and day (docs/alerts.md). Writing it runs on the default
# queue (bulk work, not a delivery); the deliveries it queues go to "alerts".
REORDER_DIGEST_HOUR = env.int("REORDER_DIGEST_HOUR", default=7)
REORDER_DIGEST_MINUTE = env.int("REORDER_DIGEST_MINUTE", default=0)
CELERY_BEAT_SCHEDULE["reorder-digest"] = {
    "task": "notifications.tasks.reorder_digest_task",
    "schedule": crontab(hour=REORDER_DIGEST_HOUR, minute=REORDER_DIGEST_MINUTE),
}
CELERY_BEAT_SCHEDULE["telegram-updates-prune"] = {
    "task": "notifications.tasks.telegram_updates_prune_task",
    "schedule": timedelta(hours=1),
}

# Webhooks: outbox rows retried with exponential backoff (30 s doubling, capped at 6 h: about 14 h
# over 12 tries) before a delivery is marked dead; the endpoint list is cached per process.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=12)
WEBHOOK_BACKOFF_BASE_SECONDS = env.float("WEBHOOK_BACKOFF_BASE_SECONDS", default=30.0)
WEBHOOK_BACKOFF_MAX_SECONDS = env.float("WEBHOOK_BACKOFF_MAX_SECONDS", default=6 * 60 * 60)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_ENDPOINT_CACHE_SECONDS = env.float("WEBHOOK_ENDPOINT_CACHE_SECONDS", default=5.0)
# Most events one delivery carries: a change of n stock rows (an ERP import) is ceil(n / this) POSTs per
# endpoint that accepts batches, not n (docs/orders-webhooks-import.md, "Batched deliveries").
WEBHOOK_BATCH_MAX = env.int("WEBHOOK_BATCH_MAX", default=100)
# Destinations webhooks are never sent to (webhooks/http.py): "this host" and link-local, where cloud
# metadata services answer (169.254.169.254, fd00:ec2::254, Alibaba's 100.100.100.200). Loopback and
# private networks are allowed (receivers on the same network); add them here to refuse them too.
WEBHOOK_BLOCKED_NETWORKS = env.list("WEBHOOK_BLOCKED_NETWORKS", default=[
    "0.0.0.0/8", "169.254.0.0/16", "100.100.100.200/32", "::/128", "fe80::/10", "fd00:ec2::254/128",
])
CELERY_BEAT_SCHEDULE["webhook-deliveries-sweep"] = {
    "task": "webhooks.tasks.webhook_deliveries_sweep_task",
    "schedule": env.float("WEBHOOK_SWEEP_EVERY_SECONDS", default=15.0),
}

# Orders: processing retries with backoff before the order is marked failed; the sweep queues
# again any order left in "received" (a lost task); accepted orders keep their units held.
ORDER_INVOICE_SERIES = env("ORDER_INVOICE_SERIES", default="1")
ORDER_MAX_RETRIES = env.int("ORDER_MAX_RETRIES", default=5)
ORDER_RETRY_BASE_SECONDS = env.float("ORDER_RETRY_BASE_SECONDS", default=2.0)
ORDER_REQUEUE_AFTER_SECONDS = env.int("ORDER_REQUEUE_AFTER_SECONDS", default=60)
ORDER_RESERVATION_HOLD_SECONDS = env.int("ORDER_RESERVATION_HOLD_SECONDS", default=24 * 60 * 60)
CELERY_BEAT_SCHEDULE["orders-requeue-stuck"] = {
    "task": "orders.tasks.orders_requeue_stuck_task",
    "schedule": env.float("ORDER_SWEEP_EVERY_SECONDS", default=30.0),
}

# Metrics: one directory per host shared by every process there (`make run` uses .venv/metrics). Each
# kind of process writes its Prometheus files in a subdirectory of its own (scripts/with_metrics_dir.sh:
# web, celery-default, celery-alerts, celery-orders) and /metrics sums them all, so the Celery workers' task counts
# show beside the Daphne processes' requests. Empty: each process reports only what it has itself.
METRICS_DIR = env("METRICS_DIR", default="")
# /metrics reads the pipelines' backlog from PostgreSQL (core/pipelines.py) within this budget, or leaves it out.
PIPELINE_BACKLOG_READERS = {
    "alerts": "notifications.selectors.alert_outbox_backlog",
    "webhooks": "webhooks.selectors.deliveries_backlog",
    "orders": "orders.selectors.orders_backlog",
}
METRICS_BACKLOG_SECONDS = env.float("METRICS_BACKLOG_SECONDS", default=2.0)
# /readyz waits this long for PostgreSQL (not the pool's 10 s) before it answers 503.
READYZ_DATABASE_SECONDS = env.float("READYZ_DATABASE_SECONDS", default=2.0)

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            # ISO 8601 in UTC with microseconds: logging's asctime is local time with no offset.
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "stockpulse.access": {"level": env("ACCESS_LOG_LEVEL", default="INFO")},
    },
}
