"""pip in the image trusts the CA certificates acigen installs: a host that
trusts a TLS-intercepting proxy's CA (here: a test CA added to the host's
bundle, in a mount namespace of the build's own) builds an image whose
`pip install` fetches from an HTTPS index signed by that CA (127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.python.support import EXAMPLES, STEPS
from tests.support.build import acigen
from tests.support.busybox import image_file
from tests.support.httpserver import FileServer, Resource
from tests.support.tls import make_test_ca
from tests.support.tools import ninja, validate_aci

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_mount_leaks")]

HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
WHEEL = next((EXAMPLES / "tornado" / "wheels").glob("tornado-*.whl"))
# pip without its configuration (PIP_CONFIG_FILE=/dev/null: no file read)
# verifies with its own certifi: the same index is then refused
CONTROL = """
import os, subprocess, sys
env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", "/tmp/x",
                       "--no-cache-dir", "--index-url", sys.argv[1], "tornado"],
                      env=env, capture_output=True, text=True)
assert done.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in done.stdout + done.stderr, done
open("/control", "w").write("refused without /etc/pip.conf\\n")
"""


def index(server: FileServer) -> str:
    """A PEP 503 simple index with tornado's wheel; its URL."""
    data = WHEEL.read_bytes()
    link = f"/files/{WHEEL.name}#sha256={hashlib.sha256(data).hexdigest()}"
    server.add(f"/files/{WHEEL.name}", Resource(data))
    page = f'<html><body><a href="{link}">{WHEEL.name}</a></body></html>'
    server.add("/simple/tornado/", Resource(page.encode(), content_type="text/html"))
    return server.url("/simple/")


def test_pip_installs_from_an_index_signed_by_a_ca_the_host_trusts(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    trusted = tmp_path / "host-bundle.crt"
    trusted.write_bytes(HOST_BUNDLE.read_bytes() + ca.ca_pem.read_bytes())
    with FileServer(tls=ca.server_context()) as server:
        url = index(server)
        work = tmp_path / "work"
        work.mkdir()
        pip = ["install", "--index-url", url, "--no-cache-dir", "--root-user-action=ignore",
               "tornado"]
        doc = {"name": "example.com/pip-tls",
               "app": {"exec": ["/usr/bin/python"], "user": "0", "group": "0"},
               STEPS: [{"type": "create_python_env"},
                       {"type": "cmd", "copy": False, "path": "/usr/bin/python",
                        "args": ["-c", CONTROL, url]},
                       {"type": "cmd", "copy": False, "path": "/usr/bin/pip", "args": pip}]}
        (work / "app.json").write_text(json.dumps(doc, indent=2))
        acigen(work, "app.json")
        # the host trusts the test CA: its bundle, as the build sees it, holds it
        done = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount --bind '{trusted}' '{HOST_BUNDLE}' && exec '{ninja()}'"],
            cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr
        assert server.requests_for(f"/files/{WHEEL.name}"), "pip never fetched the wheel"
    image = work / "app.aci"
    validate_aci(image)
    assert image_file(image, "rootfs/etc/pip.conf") == \
        b"[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    assert image_file(image, "rootfs/control") == b"refused without /etc/pip.conf\n"
