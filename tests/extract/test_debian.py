"""extract on a real distribution root (Debian bookworm minbase): the pruned tree
still runs, a library the programs lack stops the prune, and the fixed-point check
catches a closure that pruning changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers import elf
from acigen.helpers.extract.extraction import Request, check_fixed_point
from tests.extract.support import paths, run_extract, snapshot
from tests.support.rootfs import debian_minbase_tree

LIBDIR = "usr/lib/x86_64-linux-gnu"


@pytest.fixture
def debian(tmp_path: Path) -> Path:
    return debian_minbase_tree(tmp_path / "debian")


def chroot(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("chroot") or "chroot", str(root), *argv],
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})


def test_bash_and_ls_still_run_and_name_owners(debian: Path) -> None:
    size_before = len(paths(debian))
    result = run_extract(debian, "--binary", "/bin/bash", "--binary", "/bin/ls")
    assert result.returncode == 0, result.stderr
    left = paths(debian)
    assert len(left) < size_before / 10
    assert not any(p.startswith(("/usr/bin/apt", "/var/lib/dpkg", "/usr/share/doc"))
                   for p in left)
    listing = chroot(debian, "/bin/bash", "-c", "ls -l /; echo $((6 * 7))")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[-1] == "42"
    usr = next(line for line in lines if line.endswith(" usr"))
    assert usr.split()[2:4] == ["root", "root"]  # NSS and passwd/group kept: names, not 0


def test_a_missing_library_stops_the_prune_until_allowed(debian: Path) -> None:
    for name in ("libtinfo.so.6", "libtinfo.so.6.4"):
        os.unlink(debian / LIBDIR / name)
    before = snapshot(debian)
    result = run_extract(debian, "--binary", "/bin/bash")
    assert result.returncode == 1
    assert result.stderr.startswith("acigen-extract: error: /bin/bash cannot run as the "
                                    "image stands: ")
    assert "libtinfo.so.6" in result.stderr.splitlines()[0]
    assert 'hint: if they work without a library, list its name in the extract step\'s ' \
           '"allow_missing"' in result.stderr
    assert snapshot(debian) == before
    result = run_extract(debian, "--binary", "/bin/bash", "--allow-missing", "libtinfo.so.6")
    assert result.returncode == 0, result.stderr
    assert f"/{LIBDIR}/libc.so.6" in paths(debian)


def test_the_fixed_point_check_names_what_pruning_lost(debian: Path) -> None:
    request = Request(["/bin/ls"])
    before = elf.closure(str(debian), ["/bin/ls"])
    check_fixed_point(str(debian), request, ["/bin/ls"], before)  # unchanged: fine
    os.unlink(debian / LIBDIR / "libselinux.so.1")
    with pytest.raises(HelperError, match=f"after pruning, /{LIBDIR}/libpcre2-8.so.0 is "
                                          "missing from the closure"):
        check_fixed_point(str(debian), request, ["/bin/ls"], before)
