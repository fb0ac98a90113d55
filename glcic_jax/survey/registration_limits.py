"""How many new participant ids one client address may register per hour.

Without a bound one script could register any number of ids and answer as
all of them. The server counts the ids each address registered in the last
hour and refuses more than its limit.

The count is kept in memory, not in the database: the answers database holds
the study's data, and client addresses are personal data the study never
promised to keep. The price is that a server restart forgets the last hour,
so an address may register up to the limit again after a restart; only the
operator restarts the server, and the limit resets at most once per restart.
Memory stays bounded: an address is remembered only for ids it registered in
the last hour, at most `per_hour` entries each.
"""

import collections
import ipaddress
import threading
import time

# A class or lab that takes the survey together is usually one room behind one
# NAT address: 30 people registering within an hour must all get in (so not 1).
# A script gets 30 ids an hour from one address instead of any number; a bigger
# session can raise it with `survey.py serve --new_ids_per_hour`.
NEW_IDS_PER_ADDRESS_PER_HOUR = 30
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
    """At most `per_hour` registrations per client address in any sliding hour; thread-safe."""

    def __init__(self, per_hour: int = NEW_IDS_PER_ADDRESS_PER_HOUR, clock=time.monotonic):
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
        """Count one registration from `address`; False (and nothing counted) if over the limit.

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
        """Uncount the latest registration from `address` (it did not happen after all)."""
        with self._lock:
            times = self._times.get(client_key(address))
            if times:
                times.pop()
