"""Waitress servers that one address cannot fill: a cap on each client's open connections.

Waitress bounds the open connections of all clients together
(`connection_limit`, 100 by default). One client that opens a hundred and
sends nothing (a broken script, a slowloris attack) blocks everyone else
until its connections time out. Here a new connection from an address that
already holds `per_address` open ones is closed as soon as it is accepted,
so the others are still answered. Many addresses acting together are out of
scope: put a reverse proxy with its own limits in front for a public survey.
"""

import functools

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

# Open connections one address may hold: a browser uses at most 6, and a few
# people behind one NAT address share it.
PER_ADDRESS = 32


class _CappedChannel(HTTPChannel):
    """An HTTP channel that closes itself when its address already holds `per_address` others."""

    def __init__(self, server, sock, addr, adj, map=None, *, per_address: int):
        super().__init__(server, sock, addr, adj, map)
        if not isinstance(addr, tuple) or not addr:
            return  # a Unix socket: no address to count by
        held = sum(
            1
            for channel in list((map or {}).values())
            if isinstance(channel, HTTPChannel)
            and channel is not self
            and isinstance(channel.addr, tuple)
            and channel.addr[:1] == addr[:1]
        )
        if held >= per_address:
            self.close()


def create_server(app, per_address: int = PER_ADDRESS, **settings):
    """`waitress.create_server(app, **settings)`, each listening socket capped per address."""
    if per_address < 1:
        raise ValueError(f"per_address must be at least 1, not {per_address}")
    server = waitress.create_server(app, **settings)
    listening = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for dispatcher in listening:
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = functools.partial(_CappedChannel, per_address=per_address)
    return server
