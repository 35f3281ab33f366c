"""examples/embedded: a parent build (ninja or make) that is not acigen's.

It compiles src/hello.c with its own rule and packs the program with
acigen's file, included with `subninja` or `include`.  Editing the C source
rebuilds the program, then only the image steps from its copy onward;
editing the manifest makes the parent regenerate acigen's file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import runc
from tests.support.build import run_ninja, steps_run
from tests.support.busybox import STEPS, image_file, make_steps
from tests.support.tools import validate_aci

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "embedded"
IMAGE = "image/hello.aci"
AFTER_COPY = ["hello: step 2 copy_host_files /usr/bin/hello",
              # summaries are cut at 60 characters
              "hello: step 3 cmd busybox sh -c \"/usr/bin/hello 'the image build' > /etc/gr...",
              f"hello: pack {IMAGE} (gzip)"]


def with_acigen_on_path() -> dict[str, str]:
    """The parents call `acigen`: the one of this interpreter."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"])


def build(work: Path, tool: str) -> list[str]:
    """Build with the parent: what it ran (acigen's steps, the compiler, and
    the regeneration of acigen's file), in ninja's words."""
    if tool == "ninja":
        out = run_ninja(work, env={"PATH": with_acigen_on_path()["PATH"]}).stdout
        return steps_run(out)
    result = subprocess.run(["make"], cwd=work, capture_output=True, text=True,
                            env=with_acigen_on_path())
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = ["CC out/hello"] if re.search(r"^cc .* src/hello.c$", result.stdout, re.M) \
        else []
    regenerated = ["acigen: regenerating image/hello.mk"] if re.search(
        r"^acigen --format make ", result.stdout, re.M) else []
    return regenerated + compiled + make_steps(result.stdout)


@pytest.fixture(params=["ninja", "make"])
def parent(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    work = tmp_path / "embedded"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(
        "out", ".acigen", "hello.ninja", "hello.mk", "*.aci"))
    if request.param == "ninja":  # ninja needs the subninja file before it starts
        subprocess.run(["acigen", "--embed", "image", "-f", "image/hello.ninja",
                        "image/hello.json"], cwd=work, check=True, env=with_acigen_on_path())
    return work, request.param


def test_the_parent_builds_the_program_and_its_image(parent: tuple[Path, str],
                                                     no_mount_leaks) -> None:
    work, tool = parent
    ran = build(work, tool)
    assert "CC out/hello" in ran
    assert "hello: step 1 copy_host_files busybox" in ran
    assert ran[-3:] == AFTER_COPY
    validate_aci(work / IMAGE)
    assert image_file(work / IMAGE, "rootfs/etc/greeting") == b"hello from the image build\n"
    result = runc.run(work / IMAGE, work)
    assert (result.returncode, result.stdout) == (0, "hello from an embedded build\n"), \
        result.stderr
    assert build(work, tool) == []


def test_editing_the_source_rebuilds_the_program_then_the_image_from_its_copy(
        parent: tuple[Path, str], no_mount_leaks) -> None:
    work, tool = parent
    build(work, tool)
    time.sleep(0.01)
    source = work / "src" / "hello.c"
    source.write_text(source.read_text().replace("hello from", "greetings from"))
    assert build(work, tool) == ["CC out/hello", *AFTER_COPY]
    assert image_file(work / IMAGE, "rootfs/etc/greeting") == \
        b"greetings from the image build\n"
    assert build(work, tool) == []


def test_editing_the_manifest_regenerates_the_embedded_file(
        parent: tuple[Path, str], no_mount_leaks) -> None:
    work, tool = parent
    build(work, tool)
    time.sleep(0.01)
    manifest = work / "image" / "hello.json"
    doc = json.loads(manifest.read_text())
    doc[STEPS][2]["args"][2] = "/usr/bin/hello again > /etc/greeting"
    manifest.write_text(json.dumps(doc))
    ran = build(work, tool)
    assert ran[0] == f"acigen: regenerating image/hello.{'ninja' if tool == 'ninja' else 'mk'}"
    assert ran[1:] == [
        "hello: step 3 cmd busybox sh -c '/usr/bin/hello again > /etc/greeting'",
        f"hello: pack {IMAGE} (gzip)"]
    assert image_file(work / IMAGE, "rootfs/etc/greeting") == b"hello from again\n"
