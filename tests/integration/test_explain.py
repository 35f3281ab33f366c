"""`acigen --explain`: the steps the next build reruns, and why, in plain words."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.build import acigen, run_ninja
from tests.support.busybox import STEPS, busybox_tar, write_manifest
from tests.support.httpserver import FileServer, Resource


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    with FileServer() as server:
        server.add("/base.tar", Resource(busybox_tar()))
        work = tmp_path / "explain"
        work.mkdir()
        (work / "app.conf").write_text("v1\n")
        (work / "other.conf").write_text("other\n")
        write_manifest(work / "app.json", [
            {"type": "image", "url": server.url("/base.tar")},
            copy("app.conf", "/etc/app.conf"),
            copy("other.conf", "/etc/other.conf"),
        ])
        yield work


def copy(host: str, image: str) -> dict:
    return {"type": "copy_host_files", "files": [[host, image]]}


def explain(work: Path) -> list[str]:
    out = acigen(work, "--cache-dir", str(work.parent / "cache"), "--explain", "app.json")
    return out.stdout.splitlines()


def test_explain_says_which_steps_rerun_and_why(work: Path, no_mount_leaks) -> None:
    first = explain(work)
    assert first[0] == "acigen: the next build runs 5 of 5 steps, downloads and images:"
    assert "      because not fetched for this build directory yet" in first
    run_ninja(work)
    assert explain(work) == ["acigen: nothing to rebuild: all 5 steps, downloads and images "
                             "are up to date"]

    time.sleep(0.01)
    (work / "app.conf").write_text("v2\n")
    assert explain(work) == [
        "acigen: the next build runs 3 of 5 steps, downloads and images:",
        "  app: step 2 copy_host_files /etc/app.conf",
        "      because app.conf changed since it last ran",
        "  app: step 3 copy_host_files /etc/other.conf",
        "      because step 2 (copy_host_files) reruns first",
        "  app: pack app.aci (gzip)",
        "      because step 3 (copy_host_files) reruns first",
    ]
    run_ninja(work)

    doc = json.loads((work / "app.json").read_text())
    doc[STEPS][2] = copy("other.conf", "/etc/moved.conf")
    (work / "app.json").write_text(json.dumps(doc))
    lines = explain(work)
    assert lines[1:3] == [
        "  app: step 3 copy_host_files /etc/moved.conf",
        "      because never built as now defined: the step is new or was edited, or one "
        "before it was (or its layer was removed)"]
    assert len(lines) == 5
