"""examples/nginx exactly as its README says: the commands of its sh block,
run as written (make-rootfs's own debootstrap included), then a GET answered
200.  `--net host` shares the network of a namespace of the test's own
(loopback only), so nginx's port 80 is never the machine's."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import readme_commands
from tests.support.build import shell, user_env
from tests.support.net import private_network, serve_inside
from tests.support.tools import validate_aci

pytestmark = pytest.mark.slow


def test_make_rootfs_gives_a_root_others_can_search(nginx_example: Path) -> None:
    with tarfile.open(nginx_example / "bookworm-minbase.tar") as tar:
        top = tar.next()
    assert top is not None and top.name == "."
    assert stat.S_IMODE(top.mode) == 0o755


def test_the_readme_builds_an_image_that_serves_200(nginx_example: Path,
                                                     no_mount_leaks) -> None:
    _make_rootfs, build, run = readme_commands(nginx_example / "README.md")
    assert (build, run) == ("acigen -C xz nginx.json && ninja",
                            "acigen run --net host nginx.aci")
    output = shell(build, nginx_example)
    assert "acigen-pack: warning" not in output
    validate_aci(nginx_example / "nginx.aci")
    with private_network() as netns, \
            serve_inside(netns, run, nginx_example, user_env(), "http://127.0.0.1/") as answer:
        assert answer.endswith("\n200"), answer
        assert "Welcome to nginx!" in answer
