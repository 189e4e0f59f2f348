"""HTTP for webhook deliveries: a requests session whose connections refuse destinations in WEBHOOK_BLOCKED_NETWORKS.

Receivers are registered by staff and ``manage`` clients, and the deliverer POSTs stock events to
whatever address a receiver's host names. Link-local addresses are where cloud metadata services
answer (169.254.169.254 and the like), so those networks are refused by default; private and
loopback networks stay allowed, because an ERP on the same network is a normal receiver (operators
who have none add them to the setting).

The check is on the socket's real peer, once connected and before a byte is sent, so a host name
that resolves (or later re-resolves) to a blocked address is refused too. Behind an HTTP proxy the
peer is the proxy: the proxy's own policy applies there.
"""
import ipaddress
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_parsed: dict[tuple[str, ...], tuple[Network, ...]] = {}


def blocked_networks() -> tuple[Network, ...]:
    """WEBHOOK_BLOCKED_NETWORKS parsed (read at call time, so a settings change applies at once)."""
    configured = tuple(settings.WEBHOOK_BLOCKED_NETWORKS)
    networks = _parsed.get(configured)
    if networks is None:
        try:
            networks = tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in configured if entry.strip())
        except ValueError as exc:
            raise ImproperlyConfigured(f"WEBHOOK_BLOCKED_NETWORKS: {exc}") from None
        _parsed[configured] = networks
    return networks


def address_blocked(address: str) -> Network | None:
    """The blocked network this IP address is in, else None. IPv4-mapped IPv6 counts as its IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return next((net for net in blocked_networks() if net.version == ip.version and ip in net), None)


def url_address_blocked(url: str) -> Network | None:
    """For a URL whose host is an IP address: the blocked network it is in. Host names are judged
    when a delivery connects (they may resolve differently by then)."""
    host = urlsplit(url).hostname or ""
    try:
        return address_blocked(host)
    except ValueError:
        return None


class _PeerChecked:
    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        network = address_blocked(peer)
        if network is not None:
            sock.close()
            raise NewConnectionError(
                self, f"Destination {peer} is in the blocked network {network} (WEBHOOK_BLOCKED_NETWORKS); "
                      "nothing was sent.")
        return sock


class _HTTPConnection(_PeerChecked, HTTPConnection):
    pass


class _HTTPSConnection(_PeerChecked, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _PeerCheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def delivery_session() -> requests.Session:
    """A session for one delivery (use it in ``with``). New each time, as ``requests.post`` does: a
    kept-alive connection that the receiver closes while idle would fail the next delivery."""
    session = requests.Session()
    adapter = _PeerCheckedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
