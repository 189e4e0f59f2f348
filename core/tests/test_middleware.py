"""Tests for the request middleware's URL rule: a path or query string holding NUL is a 400, before any view."""
import pytest

from inventory.tests.factories import ProductFactory


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/stock/CAFE%00/", "/api/v1/stock/?codes=CAFE%00", "/api/v1/stock/?search=a%00b",
                                 "/api/v1/projections/%00", "/stock/%00"])
def test_a_url_with_nul_is_a_400_in_the_error_shape(reader, url):
    response = reader.get(url)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_urls_without_nul_are_served_as_before(reader):
    ProductFactory(code="CAFE-1")

    assert reader.get("/api/v1/stock/CAFE-1/").status_code == 200
    assert reader.get("/api/v1/stock/?search=caf%C3%A9").status_code == 200
