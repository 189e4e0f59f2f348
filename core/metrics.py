"""Prometheus metrics of the whole service; apps add their own counters here so names stay in one place."""
from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("stockpulse_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "stockpulse_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
STOCK_CHANGES = Counter("stockpulse_stock_changes_total", "Stock rows changed, by movement kind", ["kind"])
EVENTS_PUBLISHED = Counter("stockpulse_events_published_total", "Realtime events published", ["type"])
EVENTS_FAILED = Counter("stockpulse_events_failed_total", "Realtime events that could not be published", ["type"])
WS_FANOUT_SECONDS = Histogram(
    "stockpulse_ws_fanout_seconds",
    "Time one process takes to hand a realtime batch to all its sockets of the group",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
RESERVATION_FAST_PATH = Counter(
    "stockpulse_reservation_fast_path_total",
    "One-code reservation requests met by the ASGI fast path: served there, or handed to the Django view",
    ["outcome"],
)
RESERVATION_BATCH_SIZE = Histogram(
    "stockpulse_reservation_batch_size",
    "Requests answered together by one batch of the reservation fast path",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RESERVATION_BATCH_SECONDS = Histogram(
    "stockpulse_reservation_batch_seconds",
    "Time one batch of the reservation fast path takes: rate limits, then the reserving transaction",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CELERY_TASKS = Counter(
    "stockpulse_celery_tasks_total",
    "Celery tasks the workers ran, by task and the state each run ended in (SUCCESS, FAILURE, RETRY...)",
    ["task", "state"],
)
CELERY_TASKS_NOT_SENT = Counter(
    "stockpulse_celery_tasks_not_sent_total",
    "Celery tasks that could not be sent, the broker being down; the outbox sweeps take up their work",
    ["task"],
)
CELERY_TASK_SECONDS = Histogram(
    "stockpulse_celery_task_duration_seconds",
    "Time one Celery task run takes in a worker",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
PIPELINE_GAVE_UP = Counter(
    "stockpulse_pipeline_gave_up_total",
    "Rows an outbox pipeline stopped trying (alert messages and webhook deliveries dead, orders failed): "
    "staff resend or retry them from the admin",
    ["pipeline"],
)
