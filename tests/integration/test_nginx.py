"""The original README's nginx example, end to end, built once for the module.

examples/nginx/nginx.json on a Debian bookworm minbase root (debootstrap,
cached), with one extra step that moves nginx to a free port so the test can
use the host network as rkt did.  Built by acigen + real ninja with --oci.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.oci.test_oci import skopeo_inspect, umoci_bundle
from tests.support import runc
from tests.support.build import acigen, is_noop, run_ninja
from tests.support.net import free_port, http_get
from tests.support.rootfs import debian_minbase_tarball
from tests.support.tools import validate_aci

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "nginx"
STEPS = "-aci-packer-build-steps-"
BUILD_TIME_FILES = ("etc/resolv.conf", "usr/sbin/policy-rc.d", "etc/hosts")

pytestmark = pytest.mark.slow


def on_port(port: int) -> dict:
    sites = "/etc/nginx/sites-available/default"
    return {"type": "cmd", "copy": False, "path": "/bin/sed",
            "args": ["-i", "-e", f"s/listen 80 default_server/listen {port} default_server/",
                     "-e", r"/listen \[::\]/d", sites]}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    work = tmp_path_factory.mktemp("nginx")
    base = work / "bookworm-minbase.tar"
    shutil.copyfile(debian_minbase_tarball(), base)
    port = free_port()
    doc = json.loads((EXAMPLE / "nginx.json").read_text())
    doc[STEPS].append(on_port(port))
    (work / "nginx.json").write_text(json.dumps(doc, indent=2))
    acigen(work, "--oci", "nginx.oci.tar", "nginx.json")
    run_ninja(work)
    return SimpleNamespace(work=work, image=work / "nginx.aci", oci=work / "nginx.oci.tar",
                           base=base, port=port)


def test_validates_and_second_build_has_nothing_to_do(nginx: SimpleNamespace) -> None:
    validate_aci(nginx.image)
    assert is_noop(nginx.work)


def test_runc_with_host_network_serves_200(nginx: SimpleNamespace, tmp_path: Path) -> None:
    with runc.running(nginx.image, tmp_path, net_host=True,
                      capabilities=runc.EXECUTOR_CAPS):
        assert http_get(f"http://127.0.0.1:{nginx.port}/")[0] == 200


def test_acigen_run_serves_200_and_stops_on_ctrl_c(nginx: SimpleNamespace,
                                                   tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "acigen", "run", "--net", "host",
                             str(nginx.image)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert http_get(f"http://127.0.0.1:{nginx.port}/")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err


def members(archive: Path, prefix: str = "") -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {m.name.removeprefix("./").removeprefix(prefix): m for m in tar.getmembers()}


def content(archive: Path, info: tarfile.TarInfo | None) -> tuple | None:
    if info is None:
        return None
    if not info.isfile():
        return (info.type, info.linkname, info.mode)
    with tarfile.open(archive) as tar:
        data = tar.extractfile(info)
        assert data is not None
        return (info.type, data.read(), info.mode)


def test_build_time_files_are_as_in_the_base(nginx: SimpleNamespace) -> None:
    """resolv.conf, hosts and policy-rc.d existed only while steps ran."""
    base = members(nginx.base)
    image = members(nginx.image, "rootfs/")
    for path in BUILD_TIME_FILES:
        assert content(nginx.image, image.get(path)) == content(nginx.base, base.get(path)), \
            path


def test_oci_archive_inspects_unpacks_and_serves(nginx: SimpleNamespace,
                                                 tmp_path: Path) -> None:
    info = skopeo_inspect(f"oci-archive:{nginx.oci}")
    assert info["Labels"] == {"version": "1.0.0"}
    assert len(info["Layers"]) == 6  # one per step but setup_chroot
    bundle = umoci_bundle(nginx.oci, tmp_path / "oci")
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["capabilities"] = {key: list(runc.EXECUTOR_CAPS) for key in
                                         ("bounding", "effective", "permitted")}
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "network"]
    (bundle / "config.json").write_text(json.dumps(config))
    name = f"acigen-nginx-{os.getpid()}"
    proc = subprocess.Popen(["runc", "run", "--bundle", str(bundle), name],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert http_get(f"http://127.0.0.1:{nginx.port}/")[0] == 200
    finally:
        subprocess.run(["runc", "kill", name, "KILL"], capture_output=True)
        proc.wait(timeout=30)
        subprocess.run(["runc", "delete", "--force", name], capture_output=True)
