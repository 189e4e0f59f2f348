"""Reservations: holds on stock for storefront carts, confirmed into sales, released or expired."""
