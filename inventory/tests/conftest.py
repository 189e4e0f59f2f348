"""Fixtures for inventory tests of staff limited to locations: two stores, and a session at one of them."""
import pytest

from inventory.tests.factories import staff_at, stores_stocking


@pytest.fixture
def stores(db):
    """LOJA-A and LOJA-B, stocking nothing yet."""
    return stores_stocking()


@pytest.fixture
def limited(client, stores):
    """A session (admin and API) of staff listed at LOJA-A only."""
    client.force_login(staff_at(stores[0]))
    return client
