"""Check that PostgreSQL and Redis answer; if not, say exactly how to start them and exit non-zero."""
import os
import socket
import sys
from urllib.parse import urlparse

HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start   "
    "(or: docker compose up -d db)",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no   '
    "(or: docker compose up -d redis)",
}


def answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    checks = [
        ("PostgreSQL", os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stockpulse"), 5432),
        ("Redis", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), 6379),
    ]
    down = [(name, url) for name, url, port in checks if not answers(url, port)]
    for name, url in down:
        print(f"{name} does not answer at {url}.\n  Start it with: {HINTS[name]}", file=sys.stderr)
    return 1 if down else 0


if __name__ == "__main__":
    sys.exit(main())
