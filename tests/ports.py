"""Ports for the servers tests start."""
from __future__ import annotations

import random
import socket
from pathlib import Path

# The OS's randomness, apart from the `random` module's state (which a test may seed): the xdist
# workers must not walk the same sequence of ports.
_CHOOSE = random.SystemRandom()


def free_port() -> int:
    """A TCP port nothing uses right now, below the kernel's range for outgoing connections: a port from
    bind(0) is in that range, and the next connection any test opens (to PostgreSQL, to a sandbox) may
    take it as its own before the server it was meant for binds it."""
    while True:
        port = _CHOOSE.randrange(10000, _outgoing_ports_start())
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # in use: another one
                continue
            return port


def _outgoing_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
