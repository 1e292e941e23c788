"""Routing: one OMS event → one delivery per matching subscription (filters, kept events, recover,
replay)."""
