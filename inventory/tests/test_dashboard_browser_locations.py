"""End-to-end dashboard tests by location in headless Chromium against a real Daphne: picker, rows per
location, versions and gaps per (product, location), staff limited to their locations."""
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db.models import F

from core.realtime import realtime_publish
from inventory.models import Stock
from inventory.services import stock_receive
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from inventory.tests.test_dashboard_browser import (  # noqa: F401  (fixtures)
    CHROMIUM, CHROMIUM_ARGS, _wait_live, page, server, static_root,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _row(page, code: str, location: str):
    return page.locator(f'tr[data-code="{code}"][data-location="{location}"]')


def _cell(page, code: str, location: str, column: str):
    return _row(page, code, location).locator(f'td[data-col="{column}"]')


def _two_locations(code: str, principal: int, dark: int):
    """A product with ``principal`` units at the default location and ``dark`` at DARK-ZS."""
    product = ProductFactory(code=code, name=f"Produto {code}", on_hand=principal)
    stock_at_location(product, LocationFactory(code="DARK-ZS", name="Dark Zona Sul"), on_hand=dark)
    return product


def test_an_event_at_one_location_updates_only_that_locations_cell(page, server):
    from playwright.sync_api import expect

    _two_locations("LOC-1", principal=10, dark=4)
    page.goto(f"{server.url}/dashboard/?locations=PRINCIPAL,DARK-ZS")
    _wait_live(page)
    expect(_cell(page, "LOC-1", "DARK-ZS", "available")).to_have_text("4")
    expect(_cell(page, "LOC-1", "PRINCIPAL", "location")).to_be_visible()

    stock_receive(code="LOC-1", quantity=3, location="DARK-ZS")

    expect(_cell(page, "LOC-1", "DARK-ZS", "available")).to_have_text("7")
    expect(_row(page, "LOC-1", "DARK-ZS")).to_have_attribute("data-version", "2")
    expect(_cell(page, "LOC-1", "PRINCIPAL", "available")).to_have_text("10")
    expect(_row(page, "LOC-1", "PRINCIPAL")).to_have_attribute("data-version", "1")
    expect(page.locator("#feed li").first).to_contain_text("LOC-1 @ DARK-ZS")

    # Versions count per product and location: version 2 at the default location is news there too.
    stock_receive(code="LOC-1", quantity=1)
    expect(_cell(page, "LOC-1", "PRINCIPAL", "available")).to_have_text("11")
    expect(_cell(page, "LOC-1", "DARK-ZS", "available")).to_have_text("7")


def test_a_version_gap_at_one_location_reloads_that_row(page, server):
    from playwright.sync_api import expect

    product = _two_locations("LOC-2", principal=10, dark=4)
    page.clock.install()
    page.goto(f"{server.url}/dashboard/?locations=PRINCIPAL,DARK-ZS")
    _wait_live(page)
    expect(_row(page, "LOC-2", "DARK-ZS")).to_have_attribute("data-version", "1")
    # The page's timers stand still from here, so the projection refetch a stock change schedules (3 s
    # later, the same request) never runs: only the gap can reload the row.
    page.clock.pause_at(datetime.now() + timedelta(seconds=1))

    # Two changes at DARK-ZS whose events never came (the database holds version 3, 12 units), then an
    # event of version 3 with other numbers: the page applies it, sees the gap, and the reload of that
    # row brings the database's numbers, which the event alone would not.
    Stock.objects.filter(product=product, location__code="DARK-ZS").update(on_hand=12, version=F("version") + 2)
    realtime_publish([{"type": "stock.changed", "code": "LOC-2", "location": "DARK-ZS", "name": product.name,
                       "category": "", "on_hand": 9, "reserved": 0, "available": 9, "threshold": 5, "version": 3,
                       "at": "2026-12-05T10:00:00+00:00"}])

    expect(_cell(page, "LOC-2", "DARK-ZS", "on_hand")).to_have_text("12")
    expect(_row(page, "LOC-2", "DARK-ZS")).to_have_attribute("data-version", "3")
    expect(_cell(page, "LOC-2", "PRINCIPAL", "on_hand")).to_have_text("10")
    expect(_row(page, "LOC-2", "PRINCIPAL")).to_have_attribute("data-version", "1")


def test_without_locations_the_page_shows_the_default_one_and_the_picker_adds_others(page, server):
    from playwright.sync_api import expect

    _two_locations("LOC-3", principal=10, dark=4)
    page.goto(f"{server.url}/dashboard/")
    _wait_live(page)
    expect(page.locator("tr[data-code]")).to_have_count(1)
    expect(_cell(page, "LOC-3", "PRINCIPAL", "location")).to_be_hidden()  # one location: the table as before
    stock_receive(code="LOC-3", quantity=5, location="DARK-ZS")  # not shown, never applied

    page.check('#locations input[value="DARK-ZS"]')

    _wait_live(page)
    expect(_cell(page, "LOC-3", "DARK-ZS", "available")).to_have_text("9")
    expect(page.locator("tr[data-code]")).to_have_count(2)
    assert "locations=PRINCIPAL%2CDARK-ZS" in page.url
    page.reload()
    _wait_live(page)
    expect(page.locator('#locations input[value="DARK-ZS"]')).to_be_checked()
    expect(page.locator("tr[data-code]")).to_have_count(2)

    page.uncheck('#locations input[value="PRINCIPAL"]')
    _wait_live(page)
    expect(page.locator("tr[data-code]")).to_have_count(1)
    expect(_cell(page, "LOC-3", "DARK-ZS", "available")).to_have_text("9")


def test_staff_limited_to_locations_see_only_theirs(server, django_user_model, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    _two_locations("LOC-4", principal=10, dark=4)
    north = LocationFactory(code="DARK-ZN", name="Dark Zona Norte")
    user = django_user_model.objects.create_user(username="gerente", is_staff=True)
    user.password = PBKDF2PasswordHasher().encode("gerente-pass-123", "browsertestsalt")
    user.save(update_fields=["password"])
    north.staff_users.add(user)
    Stock.objects.get(location__code="DARK-ZS").location.staff_users.add(user)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{server.url}/admin/login/?next=/dashboard/%3Flocations%3Dall")
        page.fill("#id_username", "gerente")
        page.fill("#id_password", "gerente-pass-123")
        page.click("input[type=submit]")
        _wait_live(page)

        expect(page.locator("#locations input")).to_have_count(2)
        expect(page.locator("tr[data-code]")).to_have_count(1)  # LOC-4 is stocked at DARK-ZS only of theirs
        stock_receive(code="LOC-4", quantity=2)  # at the default location: not theirs
        stock_receive(code="LOC-4", quantity=1, location="DARK-ZN")
        expect(_cell(page, "LOC-4", "DARK-ZN", "available")).to_have_text("1")
        expect(page.locator('tr[data-location="PRINCIPAL"]')).to_have_count(0)
        browser.close()
