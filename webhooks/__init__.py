"""Signed outgoing webhooks: endpoints, the delivery outbox and its sender."""
