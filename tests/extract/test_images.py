"""extract in real builds (acigen, ninja, runc): images pruned to their programs'
closure still run, validate, and are a fraction of the size."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.support import runc
from tests.support.build import acigen, is_noop, run_ninja
from tests.support.net import free_port, http_get
from tests.support.rootfs import debian_minbase_tarball
from tests.support.tools import validate_aci

STEPS = "-aci-packer-build-steps-"


def manifest(path: Path, app: dict, steps: list[dict]) -> Path:
    doc = {"name": f"example.com/{path.stem}", "app": {"user": "root", "group": "root", **app},
           STEPS: steps}
    path.write_text(json.dumps(doc, indent=2))
    return path


def debian_image() -> dict:
    return {"type": "image", "path": str(debian_minbase_tarball()), "devices": True}


def tar_size(aci: Path) -> int:
    """Bytes of the image's uncompressed tar."""
    with gzip.open(aci) as stream:
        return sum(len(chunk) for chunk in iter(lambda: stream.read(1 << 20), b""))


def test_bash_and_ls_from_debian_list_the_root_with_names(tmp_path: Path,
                                                          no_mount_leaks) -> None:
    manifest(tmp_path / "ls.json", {"exec": ["/bin/ls", "-l", "/"]},
             [debian_image(), {"type": "extract", "binaries": ["/bin/bash", "/bin/ls"]}])
    acigen(tmp_path, "ls.json")
    run_ninja(tmp_path)
    image = tmp_path / "ls.aci"
    validate_aci(image)
    result = runc.run(image, tmp_path)
    assert result.returncode == 0, result.stderr
    usr = next(line for line in result.stdout.splitlines() if line.endswith(" usr"))
    assert usr.split()[2:4] == ["root", "root"]  # NSS kept: names, not numbers
    result = runc.run(image, tmp_path / "again", ["/bin/bash", "-c", "echo $((6 * 7))"])
    assert (result.returncode, result.stdout) == (0, "42\n"), result.stderr
    assert tar_size(image) < 20 * 2**20
    assert is_noop(tmp_path)


def nginx_steps(port: int) -> list[dict]:
    """The original README's nginx example on Debian, listening on PORT."""
    def apt(*args: str) -> dict:
        return {"type": "cmd", "copy": False, "path": "/usr/bin/apt-get", "args": list(args)}
    sites = "/etc/nginx/sites-available/default"
    return [debian_image(),
            {"type": "setup_chroot", "make_debian_policy_rc": True},
            apt("update"), apt("install", "-y", "nginx"), apt("clean"),
            {"type": "cmd", "copy": False, "path": "/bin/sed",
             "args": ["-i", "-e", f"s/listen 80 default_server/listen {port} default_server/",
                      "-e", r"/listen \[::\]/d", sites]}]


NGINX_KEEPS = ["/etc/nginx", "/usr/share/nginx", "/var/www/html", "/var/log/nginx",
               "/var/lib/nginx", "/etc/passwd", "/etc/group"]


@pytest.mark.slow
def test_the_readme_nginx_example_extracted_still_serves(tmp_path: Path,
                                                         no_mount_leaks) -> None:
    port = free_port()
    app = {"exec": ["/usr/sbin/nginx", "-g", "daemon off;"],
           "ports": [{"name": "http", "port": port, "protocol": "tcp"}]}
    manifest(tmp_path / "full.json", app, nginx_steps(port))
    manifest(tmp_path / "nginx.json", app, [*nginx_steps(port), {
        "type": "extract", "binaries": ["/usr/sbin/nginx"], "keeps": NGINX_KEEPS}])
    acigen(tmp_path, "full.json", "nginx.json")
    run_ninja(tmp_path)
    full, small = tar_size(tmp_path / "full.aci"), tar_size(tmp_path / "nginx.aci")
    print(f"nginx image, uncompressed tar: {full / 2**20:.1f} MiB before extract, "
          f"{small / 2**20:.1f} MiB after ({small / full:.1%})")
    assert small <= full / 4
    validate_aci(tmp_path / "nginx.aci")
    with runc.running(tmp_path / "nginx.aci", tmp_path, capabilities=runc.EXECUTOR_CAPS):
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 200
