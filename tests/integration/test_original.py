"""The original aci-packer README's four manifests, as it prints them
(tests/integration/original/, only nginx's unreachable Ubuntu URL replaced by
the Debian root examples/nginx/make-rootfs makes), built with the original's
options and run: hello prints Hello World, bash runs `ls -l /lib64/` and
busybox applets, nginx answers 200, tornado answers GET.  nginx and tornado
use the network as the original did (apt, PyPI); their servers run in a
network namespace of the test's own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.build import shell, user_env
from tests.support.net import private_network, serve_inside
from tests.support.tools import validate_aci

ORIGINAL = Path(__file__).parent / "original"
TORNADO_DEMO = Path(__file__).parent.parent.parent / "examples" / "tornado" / "helloworld.py"

pytestmark = pytest.mark.slow


def build(tmp_path: Path, name: str) -> Path:
    """`acigen -C xz -b NAME.json`: aci-packer's `-C xz NAME.json NAME.aci`."""
    work = tmp_path / name
    shutil.copytree(ORIGINAL, work)
    # the original fetched tornado's demo with wget; the example's stands in
    shutil.copyfile(TORNADO_DEMO, work / "helloworld.py")
    shell(f"acigen -C xz -b {name}.json", work)
    validate_aci(work / f"{name}.aci")
    return work


def run(work: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], cwd=work, env=user_env(),
                          capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_hello_world_prints_hello_world(tmp_path: Path, no_mount_leaks) -> None:
    work = build(tmp_path, "hello_world")
    done = run(work, "acigen run hello_world.aci")
    assert (done.returncode, done.stdout) == (0, "Hello World\n"), done.stderr


def test_bash_runs_ls_of_lib64_and_busybox_applets(tmp_path: Path, no_mount_leaks) -> None:
    work = build(tmp_path, "bash")
    done = run(work, "acigen run bash.aci -- -c 'ls -l /lib64/; echo one two | wc -w; "
                     "readlink -f /bin/wc; readlink -f /bin/busybox'")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("total ")
    assert any(line.endswith("ld-linux-x86-64.so.2") for line in lines[1:-3]), lines
    # `busybox --install -s /bin` made wc an applet: a link to busybox
    assert lines[-3] == "2" and lines[-2] == lines[-1] and lines[-1].endswith("/busybox")


def test_nginx_answers_200(tmp_path: Path, nginx_example: Path, no_mount_leaks) -> None:
    shutil.copyfile(nginx_example / "bookworm-minbase.tar", tmp_path / "bookworm-minbase.tar")
    work = tmp_path / "nginx"
    shutil.copytree(ORIGINAL, work)
    shutil.move(tmp_path / "bookworm-minbase.tar", work / "bookworm-minbase.tar")
    output = shell("acigen -C xz -b nginx.json", work)
    assert "device nodes skipped" in output  # the tarball's /dev, without a "devices" key
    validate_aci(work / "nginx.aci")
    with private_network() as netns, \
            serve_inside(netns, "acigen run --net host nginx.aci", work, user_env(),
                         "http://127.0.0.1/") as answer:
        assert answer.endswith("\n200"), answer


def test_tornado_answers_get(tmp_path: Path, no_mount_leaks) -> None:
    work = build(tmp_path, "tornado")
    with private_network() as netns, \
            serve_inside(netns, "acigen run --net host tornado.aci", work, user_env(),
                         "http://127.0.0.1:8888/") as answer:
        assert answer == "Hello, world\n\n200", answer
