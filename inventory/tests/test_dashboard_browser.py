"""End-to-end dashboard tests in headless Chromium against a real Daphne serving production settings."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone

from core.realtime import realtime_publish, realtime_publisher_drain
from core.tests.factories import ApiClientFactory
from core.tests.outage import ThrowawayRedis
from inventory.models import Product, Stock
from inventory.services import stock_adjust, stock_receive
from inventory.tests.factories import ProductFactory
from projections.models import Direction, ProjectionSummary
from projections.services import projection_recompute, projection_today
from projections.tests.factories import PlannedMovementFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaphneServer:
    """Daphne on the test database, started and stopped by the test (so it can also be restarted).

    ``workers``: serve through scripts/serve.py (`make run`) with that many Daphne processes instead."""

    def __init__(self, env: dict[str, str], port: int, workers: int | None = None):
        self.env, self.port, self.process, self.workers = env, port, None, workers
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        if self.workers is None:
            command = [sys.executable, "-m", "core.daphne_main", "-b", "127.0.0.1", "-p", str(self.port),
                       "config.asgi:application"]
        else:
            command = [sys.executable, "scripts/serve.py", "--host", "127.0.0.1", "--port", str(self.port),
                       "--workers", str(self.workers)]
        # A file, not a pipe: nobody reads the server's log while it runs, and a full pipe would stall it.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"daphne exited: {self.log.read().decode()[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading Django
                time.sleep(0.1)
        self.stop()  # nothing the test started may outlive it
        raise RuntimeError("daphne did not answer within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its whole session: serve.py's Daphne children too.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "browser-test",
           "STATIC_ROOT": str(root)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    return root


def server_env(static_root: Path, **overrides: str) -> dict[str, str]:
    """The environment of a server under test: production settings on the test database and this run's prefixes."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "browser-test",
        "STATIC_ROOT": str(static_root),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        # Same channel-layer and cache prefixes as this test process, so its writes reach the server's sockets.
        "CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "WS_HEARTBEAT_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }


@contextmanager
def running_server(env: dict[str, str], workers: int | None = None):
    """A DaphneServer on a free port, stopped on the way out."""
    daphne = DaphneServer(env, _free_port(), workers)
    daphne.start()
    try:
        yield daphne
    finally:
        daphne.stop()


@pytest.fixture
def server(static_root):
    with running_server(server_env(static_root)) as daphne:
        yield daphne


@contextmanager
def _dashboard_page(server, staff_user, monkeypatch):
    """Headless Chromium logged in as staff on the server's dashboard."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The server runs production settings, which do not know the suite's fast MD5 hasher.
    staff_user.password = PBKDF2PasswordHasher().encode("staff-pass-123", "browsertestsalt")
    staff_user.save(update_fields=["password"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield _signed_in_page(browser, server, viewport={"width": 1280, "height": 800})
        browser.close()


@pytest.fixture
def page(server, staff_user, monkeypatch):
    with _dashboard_page(server, staff_user, monkeypatch) as page:
        yield page


@pytest.fixture
def own_redis(tmp_path):
    redis_server = ThrowawayRedis(tmp_path / "redis").start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def server_on_own_redis(static_root, own_redis):
    """Daphne whose Redis (channel layer, cache, tickets) is the test's own, so the test can stop it."""
    with running_server(server_env(static_root, REDIS_URL=own_redis.url)) as daphne:
        yield daphne


@pytest.fixture
def page_on_own_redis(server_on_own_redis, staff_user, monkeypatch):
    with _dashboard_page(server_on_own_redis, staff_user, monkeypatch) as page:
        yield page


def _signed_in_page(browser, server, **context_options):
    """A new browser context (its own cookies) signed in as staff, on the dashboard."""
    page = browser.new_context(locale="en-US", **context_options).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server.url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#conn")
    return page


def _cell(page, code: str, column: str):
    return page.locator(f'tr[data-code="{code}"] td[data-col="{column}"]')


def _wait_live(page) -> None:
    page.wait_for_selector('#conn[data-state="live"]')


def test_stock_changed_through_the_api_appears_on_the_dashboard(page, server):
    from playwright.sync_api import expect

    product = ProductFactory(code="CAFE-500", name="Café 500 g", on_hand=10, category="mercearia")
    ProductFactory(code="LEITE-1L", name="Leite 1 L", on_hand=2, category="laticínios")
    manager = ApiClientFactory(scopes=["read", "manage"])
    page.reload()
    _wait_live(page)
    expect(_cell(page, product.code, "available")).to_have_text("10")
    expect(page.locator('tr[data-code="LEITE-1L"]')).to_have_attribute("data-state", "low")

    response = requests.post(
        f"{server.url}/api/v1/stock/{product.code}/movements",
        json={"kind": "receipt", "quantity": 5, "reason": "delivery"},
        headers={"Authorization": f"Bearer {manager.raw_token}"}, timeout=10,
    )
    assert response.status_code == 201, response.text

    expect(_cell(page, product.code, "on_hand")).to_have_text("15")
    expect(_cell(page, product.code, "available")).to_have_text("15")
    expect(page.locator(f'tr[data-code="{product.code}"]')).to_have_attribute("data-version", "2")
    realtime_publish([{"type": "reservation.created", "reservation": "r-1", "at": timezone.now().isoformat(),
                       "lines": [{"code": product.code, "quantity": 2}]}])
    # Newest first: the reservation, the receipt as it happened, then the server's two factory receipts.
    expect(page.locator("#feed li")).to_have_count(4)
    expect(page.locator("#feed li").first).to_contain_text(f"{product.code} ×2")
    expect(page.locator("#feed li").nth(1)).to_contain_text(f"{product.code} · Café 500 g +5 → 15")
    expect(page.locator("#count-rpm")).to_have_text("1")
    page.click(f'tr[data-code="{product.code}"]')
    page.wait_for_selector("#chart svg")


def test_dashboard_recovers_changes_made_while_the_server_was_down(page, server):
    from playwright.sync_api import expect

    product = ProductFactory(code="ARROZ-5KG", name="Arroz 5 kg", on_hand=20)
    page.reload()
    _wait_live(page)
    expect(_cell(page, product.code, "available")).to_have_text("20")

    server.stop()
    page.wait_for_selector('#conn[data-state="offline"]')
    # Published while no server listens: these events are lost, only the snapshot can bring them back.
    stock_adjust(code=product.code, delta=-20, reason="spoiled")
    stock_receive(code=product.code, quantity=3)
    server.start()

    _wait_live(page)
    expect(_cell(page, product.code, "available")).to_have_text("3")
    expect(page.locator(f'tr[data-code="{product.code}"]')).to_have_attribute("data-version", "3")
    expect(page.locator("#count-out")).to_have_text("0")


def test_dashboard_resyncs_by_itself_after_its_socket_drops(page, server):
    from playwright.sync_api import expect

    product = ProductFactory(code="FEIJAO-1KG", name="Feijão 1 kg", on_hand=8)
    page.reload()
    _wait_live(page)
    # Cut only the socket: the page reconnects by itself and resyncs.
    page.evaluate("window.stockpulse.dropSocket()")
    stock_adjust(code=product.code, delta=-8, reason="sold out")
    _wait_live(page)
    expect(_cell(page, product.code, "available")).to_have_text("0")
    expect(page.locator(f'tr[data-code="{product.code}"]')).to_have_attribute("data-state", "out")
    expect(page.locator("#count-out")).to_have_text("1")


def test_dashboard_is_not_live_while_redis_is_down_and_matches_the_database_after(page_on_own_redis, own_redis):
    from playwright.sync_api import expect

    page = page_on_own_redis
    product = ProductFactory(code="ACUCAR-1KG", name="Açúcar 1 kg", on_hand=20)
    page.reload()
    _wait_live(page)
    expect(_cell(page, product.code, "on_hand")).to_have_text("20")

    own_redis.stop()
    # The socket stays open (its heartbeats still come), but the page must not claim to be live.
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    expect(page.locator("#conn-text")).to_contain_text("Reconnecting")
    # Changed while the server's Redis is down: its events never reach the page.
    stock_adjust(code=product.code, delta=-13, reason="spoiled")
    own_redis.start()

    # Within 5 s of Redis being back: live again, showing what the database holds.
    stock = Stock.objects.get(product=product)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=5_000)
    expect(_cell(page, product.code, "on_hand")).to_have_text(str(stock.on_hand), timeout=1)
    expect(page.locator(f'tr[data-code="{product.code}"]')).to_have_attribute("data-version", str(stock.version),
                                                                              timeout=1)


def test_dashboard_search_finds_names_without_accents_and_aliases_best_match_first(page):
    from playwright.sync_api import expect

    from inventory.tests.factories import UnifiedCodeFactory

    ProductFactory(code="A-CAFETEIRA", name="Cafeteira elétrica", on_hand=3)
    ProductFactory(code="B-CAFE", name="Café torrado 500g", on_hand=10)
    UnifiedCodeFactory(code="7891234567", product=ProductFactory(code="C-LEITE", name="Leite 1 L", on_hand=8))
    page.reload()
    _wait_live(page)
    visible = 'tr[data-code]:not([hidden])'

    page.fill("#search", "cafe")
    expect(page.locator(visible)).to_have_count(2)
    expect(page.locator(visible).first).to_have_attribute("data-code", "B-CAFE")  # the whole word ranks first

    page.fill("#search", "1234567")
    expect(page.locator(visible)).to_have_count(1)
    expect(page.locator(visible).first).to_have_attribute("data-code", "C-LEITE")

    page.fill("#search", "")
    expect(page.locator(visible)).to_have_count(3)
    expect(page.locator(visible).first).to_have_attribute("data-code", "A-CAFETEIRA")


# ---- what a manager looks for: sortable columns, projection columns, past events, chart axis, phone layout


def _visible_codes(page) -> list[str]:
    return page.locator("tr[data-code]:not([hidden])").evaluate_all("rows => rows.map(r => r.dataset.code)")


def _planned_stockout(product, *, days: int, quantity: int) -> None:
    PlannedMovementFactory(product=product, date=projection_today() + timedelta(days=days), quantity=quantity)
    projection_recompute(product_ids=[product.pk])


def test_a_column_header_sorts_numbers_numerically_reverses_and_live_changes_keep_the_order(page):
    from playwright.sync_api import expect

    ProductFactory(code="A", on_hand=5)
    ProductFactory(code="B", on_hand=20)
    ProductFactory(code="C", on_hand=12)
    page.reload()
    _wait_live(page)
    assert _visible_codes(page) == ["A", "B", "C"]

    page.click('th[data-col="available"] button')
    expect(page.locator('th[data-col="available"]')).to_have_attribute("aria-sort", "ascending")
    assert _visible_codes(page) == ["A", "C", "B"]  # 5 < 12 < 20, not "12" < "20" < "5"

    page.click('th[data-col="available"] button')
    expect(page.locator('th[data-col="available"]')).to_have_attribute("aria-sort", "descending")
    assert _visible_codes(page) == ["B", "C", "A"]

    stock_receive(code="A", quantity=10)  # A now has 15: between B (20) and C (12)
    expect(_cell(page, "A", "available")).to_have_text("15")
    assert _visible_codes(page) == ["B", "A", "C"]


def test_projection_columns_show_the_summaries_and_sort_by_day_with_the_empty_last(page):
    from playwright.sync_api import expect

    late = ProductFactory(code="LATE", on_hand=10)
    soon = ProductFactory(code="SOON", on_hand=10)
    ProductFactory(code="NONE", on_hand=10)  # no summary computed
    _planned_stockout(late, days=12, quantity=11)
    _planned_stockout(soon, days=2, quantity=14)
    page.reload()
    _wait_live(page)

    for summary in ProjectionSummary.objects.filter(product__code__in=["LATE", "SOON"]).select_related("product"):
        code = summary.product.code
        expect(_cell(page, code, "stockout_date").locator("time")).to_have_attribute(
            "datetime", summary.stockout_date.isoformat())
        expect(_cell(page, code, "min_balance_7d")).to_have_text(str(summary.min_balance_7d))
    expect(_cell(page, "SOON", "min_balance_7d")).to_have_text("-4")
    expect(_cell(page, "NONE", "stockout_date")).to_have_text("—")
    expect(_cell(page, "NONE", "min_balance_7d")).to_have_text("—")

    page.click('th[data-col="stockout_date"] button')
    assert _visible_codes(page) == ["SOON", "LATE", "NONE"]
    page.click('th[data-col="stockout_date"] button')
    assert _visible_codes(page) == ["LATE", "SOON", "NONE"]


def test_a_full_barcode_in_the_search_box_shows_its_product(page):
    from playwright.sync_api import expect

    from inventory.tests.factories import UnifiedCodeFactory

    UnifiedCodeFactory(code="7891000100103", product=ProductFactory(code="NESCAU-400", name="Achocolatado 400 g"))
    ProductFactory(code="7891000-OTHER", name="Outro")
    page.reload()
    _wait_live(page)

    page.fill("#search", "7891000100103")

    expect(page.locator("tr[data-code]:not([hidden])")).to_have_count(1)
    assert _visible_codes(page) == ["NESCAU-400"]


def test_after_a_reload_the_feed_shows_the_servers_last_events(page):
    from playwright.sync_api import expect

    from reservations.services import reservation_release
    from reservations.tests.factories import reservation_make

    ProductFactory(code="OLEO-900", name="Óleo 900 ml", on_hand=7)
    held = reservation_make(lines=[{"code": "OLEO-900", "quantity": 2}])
    reservation_release(reservation_id=held.pk, client=None)
    # Their live events are out before the reload (a publish returns after its wait even if the send is
    # still pending): the feed after it must come from the server's history.
    # (On a thread of its own: Playwright's sync API runs an event loop on this one.)
    with ThreadPoolExecutor(1) as drainer:
        drainer.submit(asyncio.run, realtime_publisher_drain()).result()
    page.reload()
    _wait_live(page)

    past = page.locator("#feed li.feed-past")
    expect(past).to_have_count(3)
    assert past.evaluate_all("lis => lis.map(li => li.dataset.type)") == [
        "reservation.released", "reservation.created", "movement.receipt"]
    expect(past.nth(2)).to_contain_text("Receipt OLEO-900 · Óleo 900 ml +7 → 7")
    # A batch already on its way to the server when the page subscribed may still reach it live (the low
    # stock alert of the reservation, say), but never as a second line of an event the history shows.
    lines = page.locator("#feed li").evaluate_all("lis => lis.map(li => li.dataset.type + ' ' + li.textContent)")
    assert len(lines) == len(set(lines))


def test_an_event_the_feed_shows_reaching_the_page_again_is_not_shown_twice(page):
    from playwright.sync_api import expect

    from reservations.models import Reservation
    from reservations.services import reservation_event
    from reservations.tests.factories import reservation_make

    ProductFactory(code="OLEO-900", name="Óleo 900 ml", on_hand=7)
    held = reservation_make(lines=[{"code": "OLEO-900", "quantity": 2}])
    page.reload()
    _wait_live(page)
    created = page.locator('#feed li[data-type="reservation.created"]')
    expect(created).to_have_count(1)

    # The same reservation event delivered once more (as a batch in flight at subscription time is),
    # then a new one: only the new one adds a line.
    held = Reservation.objects.get(pk=held.pk)
    lines = list(held.lines.select_related("product", "location"))
    realtime_publish([reservation_event("created", held, lines, at=held.created_at)])
    reservation_make(lines=[{"code": "OLEO-900", "quantity": 1}])
    expect(created).to_have_count(2)
    assert created.first.text_content().endswith("OLEO-900 ×1")
    expect(created.nth(1)).to_contain_text("OLEO-900 ×2")


def test_the_feed_keeps_its_last_hundred_lines_and_forgets_the_identities_of_those_it_dropped(page):
    from playwright.sync_api import expect

    product = ProductFactory(code="OLEO-900", name="Óleo 900 ml", on_hand=7)
    page.reload()
    _wait_live(page)
    lines = page.locator("#feed li")
    expect(lines).to_have_count(1)  # the factory's receipt, from the history
    assert page.evaluate("window.stockpulse.feedShown.size") == 0  # a history movement has no identity

    realtime_publish([{"type": "reservation.created", "reservation_id": f"r-{n}", "at": timezone.now().isoformat(),
                       "lines": [{"code": product.code, "quantity": 1}]} for n in range(130)])

    expect(lines.first).to_have_attribute("data-keys", re.compile(r"reservation\.created:r-129$"))
    expect(lines).to_have_count(100)
    # Each line shown holds two identities (its live id and its reservation); the 31 dropped lines' are gone.
    assert page.evaluate("window.stockpulse.feedShown.size") == 200
    assert not page.evaluate("window.stockpulse.feedShown.has('reservation.created:r-0')")


def _store(count: int) -> str:
    """A grocery's shelf: ``count`` products, some low or out, some with a projected stockout."""
    names = ["Café torrado 500 g", "Arroz agulhinha tipo 1 5 kg", "Feijão carioca 1 kg", "Leite integral UHT 1 L",
             "Açúcar refinado 1 kg", "Óleo de soja 900 ml", "Macarrão espaguete 500 g", "Farinha de trigo 1 kg"]
    for n in range(count):
        product = ProductFactory(code=f"78910{n:08d}", name=f"{names[n % len(names)]} lote {n}",
                                 on_hand=(n * 7) % 40, low_stock_threshold=6)
        if n % 3 == 0 and product.stocks.get().on_hand:
            _planned_stockout(product, days=2 + n % 9, quantity=product.stocks.get().on_hand + 3)
    code = "7891000000000"
    stock_receive(code=code, quantity=25)
    stock_adjust(code=code, delta=-8, reason="breakage")
    product = Product.objects.get(code=code)
    for days, direction, quantity in [(1, Direction.OUT, 5), (3, Direction.OUT, 6), (6, Direction.OUT, 9),
                                      (9, Direction.IN, 20), (13, Direction.OUT, 7)]:
        PlannedMovementFactory(product=product, date=projection_today() + timedelta(days=days),
                               direction=direction, quantity=quantity)
    projection_recompute(product_ids=[product.pk])
    return code


def _screenshot_target(tmp_path, name: str) -> Path:
    # docs/ screenshots are refreshed only on request (DASHBOARD_SCREENSHOT=1), so a test run leaves the
    # checkout unchanged.
    return ROOT / "docs" / name if os.environ.get("DASHBOARD_SCREENSHOT") else tmp_path / name


def test_the_chart_has_a_date_axis_and_stays_in_view_while_the_table_scrolls(page, tmp_path):
    from playwright.sync_api import expect

    code = _store(40)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.reload()
    _wait_live(page)
    page.click(f'tr[data-code="{code}"]')
    expect(page.locator("#chart path.projection")).to_have_count(1)

    labels = page.locator("#chart .time-axis text.xtick:not(.xdate)")
    assert labels.count() >= 2
    ticks = labels.evaluate_all("ts => ts.map(t => [t.getAttribute('data-time'), t.textContent])")
    times = [time for time, _text in ticks]
    assert times == sorted(times) and all(text.strip() for _time, text in ticks)

    page.mouse.wheel(0, 5000)
    page.wait_for_function("window.scrollY > 300")
    box = page.locator("#chart svg").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 768
    target = _screenshot_target(tmp_path, "dashboard.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


def test_on_a_phone_every_row_shows_code_name_and_available_without_sideways_scrolling(page, server, tmp_path):
    code = _store(24)
    # A phone's browser: a 390×844 screen that honours the page's viewport meta tag.
    page = _signed_in_page(page.context.browser, server, viewport={"width": 390, "height": 844},
                           device_scale_factor=2, is_mobile=True, has_touch=True)
    _wait_live(page)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for column in ("code", "name", "available"):
        boxes = page.locator(f'tr[data-code]:not([hidden]) td[data-col="{column}"]').evaluate_all(
            "tds => tds.map(td => td.getBoundingClientRect()).map(r => [r.left, r.right, r.width])")
        assert len(boxes) == 24
        assert all(left >= 0 and right <= 390 and width > 0 for left, right, width in boxes), column
    assert page.locator('tr[data-code] td[data-col="on_hand"]').first.is_hidden()
    page.click(f'tr[data-code="{code}"]')
    page.wait_for_selector("#chart svg")
    target = _screenshot_target(tmp_path, "dashboard-phone.png")
    page.screenshot(path=str(target), scale="css")  # 390×844 pixels
    assert target.stat().st_size > 10_000


def test_projection_columns_follow_a_live_stock_change(page):
    from playwright.sync_api import expect

    product = ProductFactory(code="MILHO-1KG", on_hand=10)
    _planned_stockout(product, days=2, quantity=14)
    page.reload()
    _wait_live(page)
    expect(_cell(page, "MILHO-1KG", "min_balance_7d")).to_have_text("-4")

    stockout = _cell(page, "MILHO-1KG", "stockout_date").inner_text()

    # Still a stockout on the same day: no risk event, only the stock change tells the page.
    stock_receive(code="MILHO-1KG", quantity=2)
    projection_recompute(product_ids=[product.pk])  # what the recompute task does after the change

    expect(_cell(page, "MILHO-1KG", "available")).to_have_text("12")
    expect(_cell(page, "MILHO-1KG", "min_balance_7d")).to_have_text("-2")
    expect(_cell(page, "MILHO-1KG", "stockout_date")).to_have_text(stockout)
