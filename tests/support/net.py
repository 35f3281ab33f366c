"""Talking to a server a test started on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server to take)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 30,
             server: subprocess.Popen | None = None) -> tuple[int, bytes]:
    """GET URL directly (no proxy from the environment), retrying while the
    server starts: (status, body).  Gives up at TIMEOUT, or when SERVER ends."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=5) as response:
                return int(response.status), response.read()
        except OSError:
            if time.monotonic() > deadline or (server is not None and server.poll() is not None):
                raise
            time.sleep(0.2)
