"""Debian's `docker-registry` (the reference distribution registry) on 127.0.0.1.

`running_registry(work)` starts one on a free port with its storage under
WORK, plain HTTP; `running_registry(work, auth=True)` adds htpasswd auth
(user `tester`, password `secret`) over TLS with a test CA.  Its access log
(one JSON line per request) is kept, so a test can count blob uploads.  The
registry is stopped, and its files removed, when the context ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port
from tests.support.tls import LocalCA, make_test_ca
from tests.support.tokenserver import ISSUER, SERVICE, TokenServer

USER, PASSWORD = "tester", "secret"


@dataclass
class Registry:
    host: str                 # 127.0.0.1:PORT
    log: Path                 # the registry's stderr (its request log)
    storage: Path             # its filesystem storage
    ca: LocalCA | None = None
    auth_file: Path | None = None   # a containers auth.json with the credentials
    tokens: TokenServer | None = None  # the token server, with token auth

    def ref(self, name: str) -> str:
        return f"docker://{self.host}/{name}"

    def skopeo_flags(self) -> list[str]:
        """What skopeo needs to talk to it (for refs on the destination side)."""
        if self.ca is None:
            return ["--dest-tls-verify=false"]
        trust = self.ca.ca_pem.parent.parent / "trust"  # containers' cert dir: *.crt only
        return ["--dest-cert-dir", str(trust), "--dest-authfile", str(self.auth_file)]

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the registry logged so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "http.request.method" in entry and \
                        "http.response.status" in entry:
                    out.append((entry["http.request.method"], entry["http.request.uri"]))
        return out

    def blob_uploads(self) -> int:
        """Blob uploads started (POST .../blobs/uploads/)."""
        return sum(1 for method, uri in self.requests()
                   if method == "POST" and "/blobs/uploads/" in uri)


def _config(storage: Path, port: int, ca: LocalCA | None, htpasswd: Path | None,
            token: TokenServer | None = None) -> str:
    lines = ["version: 0.1", "log:", "  level: info", "  formatter: json",
             "  accesslog:", "    disabled: true",
             "storage:", "  filesystem:", f"    rootdirectory: {storage}",
             "  delete:", "    enabled: true",
             "http:", f"  addr: 127.0.0.1:{port}", "  secret: acigen-test"]
    if ca is not None:
        lines += ["  tls:", f"    certificate: {ca.server_pem}", f"    key: {ca.server_key}"]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: acigen-test", f"    path: {htpasswd}"]
    if token is not None:
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {SERVICE}",
                  f"    issuer: {ISSUER}", f"    rootcertbundle: {token.cert}"]
    return "\n".join(lines) + "\n"


def _write_auth_file(path: Path, host: str) -> None:
    import base64
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))


def _wait_up(url: str, proc: subprocess.Popen, ca: LocalCA | None) -> None:
    import ssl
    context = ssl.create_default_context(cafile=str(ca.ca_pem)) if ca else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    deadline = time.monotonic() + 30
    while True:
        try:
            opener.open(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def running_registry(work: Path, auth: bool = False, token: bool = False
                     ) -> Iterator[Registry]:
    """A registry on 127.0.0.1 storing under WORK/registry, stopped after;
    AUTH: htpasswd over TLS; TOKEN: bearer tokens from a token server, over TLS."""
    base = work / "registry"
    base.mkdir(parents=True)
    if token:
        with TokenServer(base / "tokens", USER, PASSWORD) as server, \
                _running(base, True, server) as registry:
            registry.tokens = server
            yield registry
        return
    with _running(base, auth, None) as registry:
        yield registry


@contextlib.contextmanager
def _running(base: Path, auth: bool, token: TokenServer | None) -> Iterator[Registry]:
    port = free_port()
    host = f"127.0.0.1:{port}"
    ca = make_test_ca(base / "certs") if auth else None
    if ca is not None:
        (base / "trust").mkdir()
        shutil.copyfile(ca.ca_pem, base / "trust" / "ca.crt")
    htpasswd = None
    if auth and token is None:
        htpasswd = base / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), USER, PASSWORD], check=True,
                       capture_output=True)
    config = base / "config.yml"
    config.write_text(_config(base / "storage", port, ca, htpasswd, token))
    log = base / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    try:
        scheme = "https" if ca else "http"
        _wait_up(f"{scheme}://{host}/v2/", proc, ca)
        registry = Registry(host, log, base / "storage", ca)
        if auth:
            registry.auth_file = base / "auth.json"
            _write_auth_file(registry.auth_file, host)
        yield registry
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def blob_file(registry: Registry, digest: str) -> Path:
    """Where the registry keeps blob DIGEST (sha256:HEX) on disk."""
    hex_digest = digest.split(":", 1)[1]
    return registry.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / \
        hex_digest[:2] / hex_digest / "data"


def push_archive(registry: Registry, archive: Path, name: str) -> str:
    """skopeo copy the oci-archive ARCHIVE to the registry as NAME (name:tag);
    the pushed manifest's digest."""
    digest_file = archive.with_name(archive.name + ".digest")
    subprocess.run(["skopeo", "copy", "-q", *registry.skopeo_flags(),
                    "--digestfile", str(digest_file), f"oci-archive:{archive}",
                    registry.ref(name)], check=True, capture_output=True)
    return digest_file.read_text().strip()
