"""Delivery: a delivery message → at most one attempt → its recorded outcome."""
