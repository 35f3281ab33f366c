"""Run an ACI with runc, as an App Container executor would, for tests.

The image is unpacked into an OCI bundle (rootfs/ + a config.json made by
`runc spec` and filled from the image's app section).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# what rkt (and docker) grant an app by default; `runc spec` alone grants only
# the last three, so a server that chowns or drops to a user would fail
EXECUTOR_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                 "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                 "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")


def image_manifest(aci: Path) -> dict[str, Any]:
    with tarfile.open(aci) as tar:
        member = tar.extractfile("manifest")
        assert member is not None
        return json.load(member)


def bundle(aci: Path, dest: Path, args: list[str] | None = None,
           net_host: bool = False, capabilities: tuple[str, ...] | None = None) -> Path:
    """Unpack ACI into an OCI bundle at DEST; returns DEST."""
    rootfs = dest / "rootfs"
    rootfs.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf",
                    str(aci), "-C", str(rootfs), "--strip-components=1", "rootfs"],
                   check=True)
    app = image_manifest(aci).get("app", {})
    subprocess.run(["runc", "spec", "--bundle", str(dest)], check=True)
    config = json.loads((dest / "config.json").read_text())
    process = config["process"]
    process["args"] = args or app.get("exec") or ["/bin/sh"]
    process["terminal"] = False
    process["cwd"] = app.get("workingDirectory", "/")
    process["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + \
        [f"{e['name']}={e['value']}" for e in app.get("environment", [])]
    config["root"]["readonly"] = False
    if capabilities is not None:
        process["capabilities"] = {key: list(capabilities)
                                   for key in ("bounding", "effective", "permitted")}
    if net_host:
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                         if n["type"] != "network"]
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def run(aci: Path, workdir: Path, args: list[str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the image's app (or ARGS) to completion; returns its output."""
    path = bundle(aci, workdir / "bundle", args)
    name = "acigen-test-" + uuid.uuid4().hex[:12]
    try:
        return subprocess.run(["runc", "run", "--bundle", str(path), name],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["runc", "delete", "--force", name], capture_output=True)


@contextlib.contextmanager
def running(aci: Path, workdir: Path, args: list[str] | None = None,
            net_host: bool = True, capabilities: tuple[str, ...] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Start the image's app in the background (a server); stop it after."""
    path = bundle(aci, workdir / "bundle", args, net_host=net_host, capabilities=capabilities)
    name = "acigen-test-" + uuid.uuid4().hex[:12]
    with open(workdir / "runc.log", "wb") as log:
        proc = subprocess.Popen(["runc", "run", "--bundle", str(path), name], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            subprocess.run(["runc", "kill", name, "KILL"], capture_output=True)
            try:
                proc.wait(timeout=20)
            finally:
                subprocess.run(["runc", "delete", "--force", name], capture_output=True)
