"""Redis Sentinel addresses (REDIS_SENTINELS) as the channel layer's hosts and Celery's broker URL (used by settings)."""


def sentinels_parse(text: str) -> list[tuple[str, int]]:
    """``"10.0.0.1:26379,10.0.0.2:26379"`` as [(host, port), ...]; a bare host gets Sentinel's port 26379."""
    found = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "26379")
        found.append((host.strip("[]"), int(port)))
    return found


def channel_layer_hosts(sentinels: list[tuple[str, int]], master: str, *, db: int = 0) -> list[dict]:
    """One channels-redis host entry that finds the master named ``master`` through the sentinels and,
    after a failover, the new one (its SentinelConnectionPool asks them again on each new connection)."""
    return [{"master_name": master, "sentinels": sentinels, "db": db}]


def celery_broker_url(sentinels: list[tuple[str, int]], *, db: int = 0) -> str:
    """Kombu's URL for a Redis broker behind Sentinel: ``sentinel://h1:p1/db;sentinel://h2:p2/db`` (the
    master's name goes in the transport options)."""
    return ";".join(f"sentinel://{host}:{port}/{db}" for host, port in sentinels)
