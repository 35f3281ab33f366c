"""BUILDDIR/owner appears whole or not at all: helpers of one build that
start together in a new build directory never see a half-written record,
and an empty one (a torn write by an older acigen) is rewritten, not
taken for another builder's."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.build import acigen, run_ninja
from tests.support.busybox import busybox_tar, shell, write_manifest
from tests.support.tools import validate_aci

# each process waits for the same moment, then records itself as the owner
CHECK_AT = """
import sys, time
from acigen.helpers.core import identity
start = float(sys.argv[2])
while time.time() < start:
    pass
identity.check(sys.argv[1])
"""


def check_at_once(builddir: Path, processes: int) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", CHECK_AT, str(builddir), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(processes)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=60), p.communicate()[0], "")
            for p in procs]


def test_helpers_starting_together_in_a_new_build_directory_all_go_on(tmp_path: Path) -> None:
    for round_ in range(12):
        builddir = tmp_path / f"b{round_}"
        builddir.mkdir()
        for result in check_at_once(builddir, 12):
            assert result.returncode == 0, result.stdout
        assert (builddir / "owner").read_text() == "root\n"
        assert sorted(p.name for p in builddir.iterdir()) == ["owner"]  # no temporary left


def test_an_empty_owner_record_is_rewritten_and_the_build_goes_on(tmp_path: Path) -> None:
    (tmp_path / "base.tar").write_bytes(busybox_tar())
    write_manifest(tmp_path / "m.json", [{"type": "image", "path": "base.tar"},
                                         shell("echo hi > /hi")])
    (tmp_path / ".acigen").mkdir()
    (tmp_path / ".acigen" / "owner").write_text("")
    acigen(tmp_path, "m.json")
    run_ninja(tmp_path)
    validate_aci(tmp_path / "m.aci")
    assert (tmp_path / ".acigen" / "owner").read_text() == "root\n"


def test_a_whole_record_of_another_builder_is_still_refused(tmp_path: Path) -> None:
    builddir = tmp_path / "b"
    builddir.mkdir()
    (builddir / "owner").write_text("user 4242\n")
    result = check_at_once(builddir, 1)[0]
    assert result.returncode != 0
    assert result.stdout.strip().splitlines()[-1].endswith(
        "this build directory belongs to rootless builds by uid 4242, not to root builds "
        "(sudo ninja): use another build directory (-B), or remove this one as its owner "
        "(acigen clean)"), result.stdout
