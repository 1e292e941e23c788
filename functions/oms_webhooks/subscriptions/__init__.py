"""Subscriptions: their rules and storage, sealed secrets, health (auto-disable)."""
