"""A three-step image, built for real in overlay and in copy layer mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oci.imaging import make_layer, manifest
from tests.support.privilege import skip_unless_root
from tests.support.rootfs import busybox_tree

APP = """#!/bin/sh
cat /etc/changed
ls /var/opaque
for p in /etc/gone /var/deldir /var/deldir/child /usr/share/added; do
  if [ -e $p ]; then echo "$p present"; else echo "$p absent"; fi
done
id -u; id -g
exit 3
"""

BASE = """
cp -a {tree}/. .
echo old > etc/changed
echo gone > etc/gone
mkdir -p var/opaque var/deldir/child
echo 1 > var/opaque/old1
echo 2 > var/opaque/old2
echo c > var/deldir/child/file
"""

CHANGES = """
rm etc/gone
rm -rf var/opaque var/deldir
mkdir var/opaque
echo new > var/opaque/new
echo changed > etc/changed
mkdir -p usr/share
echo added > usr/share/added
"""

ADD_APP = """
cat > bin/app.sh <<'APP'
{app}APP
chmod 755 bin/app.sh
ln bin/app.sh bin/app-link.sh
"""

HELLO = manifest(exec_=["/bin/sh", "/bin/app.sh"])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()


def build_layers(base: Path, mode: str, tree: Path) -> list[Path]:
    """Three layers under BASE; returned nearest first, as image files list them."""
    first = make_layer(base / "01-base", [], mode, BASE.format(tree=tree))
    second = make_layer(base / "02-changes", [first], mode, CHANGES)
    third = make_layer(base / "03-app", [second, first], mode, ADD_APP.format(app=APP))
    return [third, second, first]


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_tree(tmp_path_factory.mktemp("busybox") / "tree")


@pytest.fixture(scope="session", params=["overlay", "copy"])
def three_layers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 busybox: Path) -> tuple[str, list[Path]]:
    mode = request.param
    base = tmp_path_factory.mktemp(f"layers-{mode}")
    return mode, build_layers(base, mode, busybox)
