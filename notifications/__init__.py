"""Notifications: Telegram alerts for delivery drivers, the driver bot and the alert outbox."""
