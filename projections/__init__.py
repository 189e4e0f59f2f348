"""Projections: planned movements and each product's projected balance, lowest point and stockout day."""
