"""Counting events per client address over a sliding hour: the mechanism of the survey's limits.

`admission` uses two counts: new ids registered and wrong resume codes typed.

The counts are kept in memory (the server is one process; its threads share
them), not in the database: the answers database holds the study's data, and
client addresses are personal data the study never promised to keep. The
price: a restart forgets the last hour, so afterwards an address may reach
each limit again. Only the operator restarts the server; a client cannot.
Memory stays bounded: an address is remembered only for its events of the
last hour, at most `per_hour` of them.
"""

import collections
import ipaddress
import threading
import time

WINDOW_S = 3600.0


def client_key(address: str | None) -> str:
    """Whose count a request adds to: the IPv4 address, or the IPv6 /64 network.

    One IPv6 host usually owns a whole /64, so its single addresses are not
    separate clients.
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class AddressLimit:
    """At most `per_hour` events per client address in any sliding hour; thread-safe."""

    def __init__(self, per_hour: int, clock=time.monotonic):
        if per_hour < 1:
            raise ValueError(f"per_hour must be at least 1, not {per_hour}")
        self.per_hour = per_hour
        self._clock = clock
        self._lock = threading.Lock()
        self._times: dict[str, collections.deque] = {}

    def _forget_old(self, now: float) -> None:
        for key in list(self._times):
            times = self._times[key]
            while times and times[0] <= now - WINDOW_S:
                times.popleft()
            if not times:
                del self._times[key]

    def take(self, address: str | None) -> bool:
        """Count one event from `address`; False (and nothing counted) if over the limit.

        Checking and counting are one step, so concurrent requests cannot all
        pass the check before any of them is counted.
        """
        key = client_key(address)
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            times = self._times.setdefault(key, collections.deque())
            if len(times) >= self.per_hour:
                return False
            times.append(now)
            return True

    def give_back(self, address: str | None) -> None:
        """Uncount the latest event from `address` (it did not happen, or does not count)."""
        with self._lock:
            times = self._times.get(client_key(address))
            if times:
                times.pop()
