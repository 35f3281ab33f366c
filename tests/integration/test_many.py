"""Many manifests, one graph: shared work done once, the rest in parallel.

Three manifests share a base URL and their first two commands.  One
build.ninja builds all three: one download, the shared layers built once,
the three last steps at the same time under `ninja -j3`; a Makefile of the
same manifests builds byte-identical images under `make -j3`, and remakes
itself when a manifest changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.build import acigen, is_noop, run_ninja, steps_run
from tests.support.busybox import (
    STEPS,
    busybox_tar,
    image_file,
    make,
    make_steps,
    ninja_log,
    shell,
    write_manifest,
)
from tests.support.httpserver import FileServer, Resource
from tests.support.tools import validate_aci

NAMES = ("a", "b", "c")
SHARED = ["a, b, c: step 1 image unpack {url}",
          "a, b, c: step 2 cmd busybox sh -c 'echo one > /etc/one'",
          "a, b, c: step 3 cmd busybox sh -c 'echo two > /etc/two'"]


@pytest.fixture
def served() -> Iterator[FileServer]:
    with FileServer() as server:
        server.add("/base.tar", Resource(busybox_tar()))
        yield server


def three(work: Path, url: str) -> list[str]:
    """Manifests a, b, c: the same base and two commands, then their own."""
    work.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        write_manifest(work / f"{name}.json", [
            {"type": "image", "url": url},
            shell("echo one > /etc/one"),
            shell("echo two > /etc/two"),
            # the sleep makes the three last steps overlap when run in parallel
            shell(f"echo {name} > /etc/who; sleep 1"),
        ])
    return [f"{name}.json" for name in NAMES]


def test_three_images_share_one_download_and_their_common_layers(
        served: FileServer, tmp_path: Path, no_mount_leaks) -> None:
    url = served.url("/base.tar")
    work = tmp_path / "ninja"
    manifests = three(work, url)
    acigen(work, "--cache-dir", str(tmp_path / "cache"), *manifests)
    out = run_ninja(work, "-j3").stdout

    assert len(served.requests_for("/base.tar")) == 1
    ran = steps_run(out)
    assert ran.count(f"a, b, c: fetch {url}") == 1
    for shared in SHARED:
        assert ran.count(shared.format(url=url)) == 1, ran
    for name in NAMES:
        assert ran.count(f"{name}: step 4 cmd busybox sh -c 'echo {name} > /etc/who; "
                         "sleep 1'") == 1
    assert len(ran) == 1 + 3 + 3 + 3  # download, shared layers, own layers, packs
    assert f"[2/10] {SHARED[0].format(url=url)}" in out  # progress a person can read

    # the three independent last steps ran at the same time
    log = ninja_log(work)
    last = [times for path, times in log.items() if "/04-cmd-" in path and
            path.endswith(".stamp")]
    assert len(last) == 3
    assert max(start for start, _ in last) < min(end for _, end in last), last

    for name in NAMES:
        validate_aci(work / f"{name}.aci")
        assert image_file(work / f"{name}.aci", "rootfs/etc/who") == f"{name}\n".encode()
        assert image_file(work / f"{name}.aci", "rootfs/etc/two") == b"two\n"
    assert is_noop(work)


def test_make_builds_the_same_bytes_and_remakes_itself(
        served: FileServer, tmp_path: Path, no_mount_leaks) -> None:
    url, cache = served.url("/base.tar"), str(tmp_path / "cache")
    by_ninja, by_make = tmp_path / "ninja", tmp_path / "make"
    for work in (by_ninja, by_make):
        manifests = three(work, url)
    acigen(by_ninja, "--cache-dir", cache, *manifests)
    run_ninja(by_ninja, "-j3")
    acigen(by_make, "--format", "make", "--cache-dir", cache, *manifests)
    out = make(by_make, "-j3").stdout

    ran = make_steps(out)
    for shared in SHARED:
        assert ran.count(shared.format(url=url)) == 1, out
    assert len(ran) == 10, out
    for name in NAMES:
        validate_aci(by_make / f"{name}.aci")
        assert (by_make / f"{name}.aci").read_bytes() == \
            (by_ninja / f"{name}.aci").read_bytes(), name
    again = make(by_make, "-j3").stdout
    assert make_steps(again) == [] and "Nothing to be done" in again

    # editing c's last step: make remakes the Makefile, then reruns c's step 4
    # and c's pack only
    untouched = {n: (by_make / f"{n}.aci").stat().st_mtime_ns for n in ("a", "b")}
    time.sleep(0.01)
    doc = json.loads((by_make / "c.json").read_text())
    doc[STEPS][3] = shell("echo see > /etc/who")
    (by_make / "c.json").write_text(json.dumps(doc))
    out = make(by_make, "-j3").stdout
    assert "regenerating Makefile" in out
    assert make_steps(out) == ["c: step 4 cmd busybox sh -c 'echo see > /etc/who'",
                               "c: pack c.aci (gzip)"], out
    assert image_file(by_make / "c.aci", "rootfs/etc/who") == b"see\n"
    assert {n: (by_make / f"{n}.aci").stat().st_mtime_ns for n in ("a", "b")} == untouched
    assert make_steps(make(by_make, "-j3").stdout) == []


def test_a_step_that_fails_under_make_leaves_no_stamp(
        served: FileServer, tmp_path: Path, no_mount_leaks) -> None:
    work = tmp_path / "fails"
    work.mkdir()
    write_manifest(work / "x.json", [{"type": "image", "url": served.url("/base.tar")},
                                     shell("echo partial > /etc/partial; exit 3")])
    acigen(work, "--format", "make", "--cache-dir", str(tmp_path / "cache"), "x.json")
    result = make(work, check=False)
    assert result.returncode != 0
    assert "x: step 2 cmd" in result.stdout
    assert not list((work / ".acigen" / "layers").glob("02-cmd-*.stamp"))
    assert not (work / "x.aci").exists()
