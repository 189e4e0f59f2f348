"""StockPulse's PostgreSQL database backend (Django's, with fail-fast and dead-connection handling): ENGINE ``core.postgresql``."""
