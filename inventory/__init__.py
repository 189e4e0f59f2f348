"""Inventory: products (SKUs), unified codes, stock counters and the movement ledger."""
