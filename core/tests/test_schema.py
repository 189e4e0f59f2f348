"""The OpenAPI schema and its docs pages: served offline, error answers documented, real answers conform to it."""
import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection
from drf_spectacular.generators import SchemaGenerator

from core.tests.factories import ApiClientFactory
from core.tests.test_serve_script import serving

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(ROOT / ".venv" / "bin" / "schemathesis"))


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_docs_page_takes_every_asset_from_this_server(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not served by this server"
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among the static files"


@pytest.mark.django_db
def test_home_sends_staff_to_the_dashboard(client, staff_user):
    client.force_login(staff_user)

    response = client.get("/")

    assert (response.status_code, response["Location"]) == (302, "/dashboard/")


def test_home_sends_everyone_else_to_the_api_docs(client):
    response = client.get("/")

    assert (response.status_code, response["Location"]) == (302, "/api/docs/")


def test_every_view_has_a_component_of_its_own(schema):
    components = schema["components"]["schemas"]

    # Nested Input serializers of different views used to share (and overwrite) one "InputRequest".
    assert "InputRequest" not in components
    assert {"ProductCreateInputRequest", "UnifiedCodeCreateInputRequest"} <= set(components)
    assert components["ProductCreateInputRequest"]["required"] == ["code", "name"]


def test_lists_are_documented_as_pages(schema):
    stock_list = schema["paths"]["/api/v1/stock/"]["get"]

    page = stock_list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"count", "next", "previous", "results"}
    assert {"page", "page_size"} <= {parameter["name"] for parameter in stock_list["parameters"]}


def test_error_answers_are_documented_with_the_error_shape(schema):
    create = schema["paths"]["/api/v1/reservations"]["post"]["responses"]

    assert {"400", "401", "403", "404", "409", "410", "422", "429", "503"} <= set(create)
    for status in ("409", "503"):
        assert create[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in create["503"]["headers"]
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    # A read has no body to reject as a conflict.
    assert "409" not in schema["paths"]["/api/v1/stock/{code}/"]["get"]["responses"]


def test_the_telegram_webhook_is_not_part_of_the_client_api(schema):
    assert not [path for path in schema["paths"] if path.startswith("/telegram/")]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_answers_of_every_route_conform_to_the_schema(tmp_path):
    """Schemathesis drives every documented operation of a real server holding the demo data: no 5xx,
    no status code, header, content type or body the schema does not describe."""
    call_command("seed_demo", verbosity=0)
    token = ApiClientFactory(scopes=["read", "reserve", "manage"]).raw_token
    database = connection.settings_dict
    database_url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"

    with serving(tmp_path, workers=1, DATABASE_URL=database_url) as served:
        result = subprocess.run(
            [SCHEMATHESIS, "run", f"{served.url}/api/schema/", "--url", served.url,
             "-H", f"Authorization: Bearer {token}", "--seed", "1", "--max-examples", "15", "--no-color",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance,response_headers_conformance"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )

    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    counts = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert counts and int(counts[1]) == int(counts[2]) > 100, summary
