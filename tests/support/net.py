"""Talking to a server a test started on 127.0.0.1."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


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


@contextlib.contextmanager
def private_network() -> Iterator[str]:
    """A network namespace with only loopback, up; yields its /proc path.
    `acigen run --net host` started inside it (nsenter --net=PATH) serves on
    ports of its own: a server's fixed port 80 is never the machine's."""
    with subprocess.Popen(["unshare", "--net", "sh", "-c",
                           "ip link set lo up && echo up && exec sleep 3600"],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "up\n"
            yield f"/proc/{holder.pid}/ns/net"
        finally:
            holder.kill()


def get_inside(netns: str, url: str) -> str:
    """The HTTP status and body of GET URL from inside NETNS ('' while nothing answers)."""
    out = subprocess.run(["nsenter", f"--net={netns}", "curl", "-s", "--noproxy", "*",
                          "-w", "\n%{http_code}", "--max-time", "10", url],
                         capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else ""


@contextlib.contextmanager
def serve_inside(netns: str, command: str, cwd: Path, env: dict[str, str],
                 url: str) -> Iterator[str]:
    """Start COMMAND (a shell line, exec'd) inside NETNS, yield its first answer
    to URL (its body, then its status), and stop it with SIGTERM after."""
    server = subprocess.Popen(["nsenter", f"--net={netns}", "sh", "-c", f"exec {command}"],
                              cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answer = ""
        deadline = time.monotonic() + 300  # a generous bound, not a timing assertion
        while not answer and server.poll() is None and time.monotonic() < deadline:
            answer = get_inside(netns, url)
            time.sleep(0.2)
        yield answer
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=300)
    assert server.returncode == 143, err
