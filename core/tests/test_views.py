"""Tests for operational endpoints, request ids, metrics, rate limits, the JSON 404 and API paths asked with or
without their trailing slash."""
import threading

import pytest
from prometheus_client import REGISTRY

from core.tests.metrics import healthz_counted_by_another_process, http_requests_in_text, http_requests_of_route
from inventory.models import Stock
from inventory.tests.factories import ProductFactory
from reservations.models import Reservation

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_credentials(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_ok_when_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_503_when_redis_is_unreachable(client, settings):
    # Nothing listens on port 1 of the loopback: a real refused connection.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "not_ready"
    assert set(body["details"]) == {"redis"}


def test_readyz_503_within_its_budget_when_the_database_does_not_answer(client, settings, monkeypatch):
    held, release = threading.Event(), threading.Event()

    def stuck() -> None:  # as a connection waits on a pool whose PostgreSQL is gone (10 s)
        held.set()
        release.wait(10)

    monkeypatch.setattr("core.views._select_one", stuck)
    settings.READYZ_DATABASE_SECONDS = 0.2
    try:
        response = client.get("/readyz")
    finally:
        release.set()

    assert held.is_set()
    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"database": "PostgreSQL did not answer within 0.2 s."}


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/healthz", HTTP_X_REQUEST_ID="req-42")
    generated = client.get("/healthz")

    assert echoed["X-Request-ID"] == "req-42"
    assert len(generated["X-Request-ID"]) == 32


def test_access_log_line_is_json_with_utc_time_and_the_request_id(client, caplog):
    import json
    import logging
    from datetime import datetime, timedelta

    from pythonjsonlogger.json import JsonFormatter

    caplog.set_level(logging.INFO, logger="stockpulse.access")
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-43")

    record = next(r for r in caplog.records if r.name == "stockpulse.access")
    # The formatter the service's console handler writes with (settings.LOGGING).
    formatter = next(h.formatter for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    line = json.loads(formatter.format(record))
    assert line["request_id"] == response["X-Request-ID"] == "req-43"
    assert (line["level"], line["logger"], line["status"], line["path"]) == ("INFO", "stockpulse.access", 200, "/healthz")
    assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)


def test_unsafe_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"


def test_metrics_count_requests_by_route_and_status(reader, client):
    ProductFactory(code="M-1")
    reader.get("/api/v1/stock/M-1/")

    text = client.get("/metrics").content.decode()

    assert 'stockpulse_http_requests_total{method="GET",route="api/v1/stock/<str:code>/",status="200"}' in text
    assert "stockpulse_http_request_duration_seconds_bucket" in text


def test_metrics_in_one_process_report_the_default_registry(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    labels = {"method": "GET", "route": "healthz", "status": "200"}
    before = REGISTRY.get_sample_value("stockpulse_http_requests_total", labels) or 0
    client.get("/healthz")

    text = client.get("/metrics").content.decode()

    assert http_requests_in_text(text, "healthz") == before + 1
    assert "python_gc_objects_collected_total" in text  # a collector only the default registry has


def test_metrics_with_a_multiprocess_dir_report_the_sum_of_every_process_files(client, monkeypatch, tmp_path):
    # Two other processes count healthz requests in the directory, as serve.py's Daphne children do.
    for served in (2, 3):
        healthz_counted_by_another_process(tmp_path, served)
    client.get("/healthz")  # counted in this process's memory only: this test process is not in multiprocess mode
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    text = client.get("/metrics").content.decode()

    assert http_requests_in_text(text, "healthz") == 5
    assert "python_gc_objects_collected_total" not in text


def test_unknown_url_is_json_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_404_is_written_as_drf_writes_errors_compact_and_in_utf8(client, reader):
    outside_drf = client.get("/no/such/page").content
    from_drf = reader.get("/api/v1/stock/NO-SUCH-CODE/").content

    assert outside_drf == '{"error":{"code":"not_found","message":"Não encontrado.","details":{}}}'.encode()
    assert b"\\u" not in from_drf and b'{"error":{"code":' in from_drf


def test_the_stock_detail_without_its_trailing_slash_is_served_not_redirected(reader):
    ProductFactory(code="M-1", on_hand=7)

    with_slash = reader.get("/api/v1/stock/M-1/?location=all")
    without = reader.get("/api/v1/stock/M-1?location=all")

    assert (with_slash.status_code, without.status_code) == (200, 200)
    assert without.json()["total"]["on_hand"] == 7
    assert {k: v for k, v in without.json().items() if k != "server_time"} == \
        {k: v for k, v in with_slash.json().items() if k != "server_time"}


@pytest.mark.parametrize(("asked", "route"), [("/api/v1/stock", "/api/v1/stock/"), ("/estoque/", "/estoque"),
                                             ("/api/v1/locations/", "/api/v1/locations")])
def test_list_routes_answer_in_either_form_alike(reader, asked, route):
    ProductFactory(code="M-6", on_hand=2)

    either, canonical = reader.get(asked), reader.get(route)

    assert (either.status_code, canonical.status_code) == (200, 200)
    assert either.json() == canonical.json()


def test_a_post_with_a_trailing_slash_the_route_lacks_is_served_with_its_body(reserver):
    product = ProductFactory(code="M-2", on_hand=5)
    assert Reservation.objects.count() == 0

    response = reserver.post("/api/v1/reservations/", {"lines": [{"code": "M-2", "quantity": 2}]}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["lines"] == [{"code": "M-2", "location": "PRINCIPAL", "quantity": 2}]
    assert Reservation.objects.count() == 1
    assert Stock.objects.get(product=product).reserved == 2


def test_the_seed_routes_take_either_form_too(reserver):
    ProductFactory(code="M-3", on_hand=5)

    response = reserver.post("/stock/M-3/reserve/", {"quantity": 1}, format="json")

    assert response.status_code == 200, response.content  # seed 001's status for a hold
    assert response.json()["sku"] == "M-3"


def test_a_path_matched_through_the_other_slash_is_counted_under_its_own_route(reader):
    ProductFactory(code="M-4")
    route = "api/v1/stock/<str:code>/"
    before = http_requests_of_route((s for family in REGISTRY.collect() for s in family.samples), route)

    assert reader.get("/api/v1/stock/M-4").status_code == 200

    assert http_requests_of_route((s for family in REGISTRY.collect() for s in family.samples), route) == before + 1


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/nothing/", "/api/v1/stock/M-5//", "/stock/",
                                  "/api/v1/reservations//"])
def test_an_api_path_that_matches_no_route_either_way_is_the_json_404(reader, path):
    ProductFactory(code="M-5")

    response = reader.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_pages_keep_their_slash_redirect(client):
    response = client.get("/admin")

    assert (response.status_code, response["Location"]) == (301, "/admin/")


def test_rate_limit_gives_429_with_retry_after(reader, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/day"}}

    statuses = [reader.get("/api/v1/stock/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    limited = reader.get("/api/v1/stock/")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["details"]["retry_after"] == limited["Retry-After"]


def test_rate_limits_count_per_client(api_client_with_scopes, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "2/day"}}
    first, second = api_client_with_scopes("read"), api_client_with_scopes("read")

    first_statuses = [first.get("/api/v1/stock/").status_code for _ in range(3)]
    second_status = second.get("/api/v1/stock/").status_code

    assert first_statuses == [200, 200, 429]
    assert second_status == 200
