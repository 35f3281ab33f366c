"""Fixtures shared by the integration tests."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.build import shell
from tests.support.privilege import skip_unless_root

NGINX_EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "nginx"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()


def readme_commands(readme: Path) -> list[str]:
    """The lines of README's sh block, comments stripped."""
    [block] = re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def nginx_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/nginx after its README's first command, as written:
    ./make-rootfs (debootstrap, once per session) made bookworm-minbase.tar."""
    work = tmp_path_factory.mktemp("nginx-example") / "nginx"
    shutil.copytree(NGINX_EXAMPLE, work, ignore=shutil.ignore_patterns(
        "*.tar", ".acigen", "*.aci", "*.id", "build.ninja"))
    make_rootfs = readme_commands(work / "README.md")[0]
    assert make_rootfs == "./make-rootfs"
    shell(make_rootfs, work)
    return work
