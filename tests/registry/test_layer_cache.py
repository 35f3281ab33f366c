"""--cache-repo: two build directories with empty local caches ("two machines")
building the same manifest; the second runs no cmd step and makes the same bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.registry.conftest import STEPS, Tiny, build, ok, rootfs_names
from tests.support.registry import Registry

PLAIN = ("--tls-verify", "false")
RANDOM = "head -c 64 /dev/urandom | od -x > /random && rm /etc/b && mkdir -p /made/here"


def machine(work: Path, tiny: Tiny, script: str = "echo from the script > /scripted\n") -> Path:
    """A build directory with its own copy of the base image and script."""
    work.mkdir(parents=True)
    shutil.copytree(tiny.layout, work / "layout")
    (work / "step.sh").write_text("#!/bin/sh\n" + script)
    (work / "step.sh").chmod(0o755)
    doc = {"name": "example.com/cached",
           "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
           STEPS: [{"type": "image", "oci": "oci:layout"},
                   {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", RANDOM]},
                   {"type": "cmd", "path": "step.sh"}]}
    (work / "t.json").write_text(json.dumps(doc, indent=2))
    return work


def test_second_machine_pulls_every_cmd_layer_and_makes_the_same_bytes(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    repo = ("--cache-repo", registry.ref("layers/cache"))
    first = machine(tmp_path / "one", tiny)
    out = ok(build(first, *PLAIN, *repo, "--oci", "t.oci.tar", cache=tmp_path / "cache-one"))
    assert out.count("pushed to the layer cache") == 2, out
    second = machine(tmp_path / "two", tiny)
    out = ok(build(second, *PLAIN, *repo, "--oci", "t.oci.tar", cache=tmp_path / "cache-two"))
    assert out.count("pulled from the layer cache") == 2, out
    assert "pushed to the layer cache" not in out
    # /random came from /dev/urandom: equal bytes mean the step did not run again
    names = rootfs_names(second / "t.aci")
    assert {"random", "made/here", "scripted"} <= names and "etc/b" not in names
    assert (first / "t.aci").read_bytes() == (second / "t.aci").read_bytes()
    assert (first / "t.oci.tar").read_bytes() == (second / "t.oci.tar").read_bytes()

    # a changed script is new content under the same name: that step runs, the one
    # before it is still pulled
    third = machine(tmp_path / "three", tiny, "echo changed > /scripted\n")
    out = ok(build(third, *PLAIN, *repo, cache=tmp_path / "cache-three"))
    assert out.count("pulled from the layer cache") == 1, out
    assert out.count("pushed to the layer cache") == 1, out


def test_unreachable_cache_is_a_warning_and_the_steps_run(tiny: Tiny, tmp_path: Path) -> None:
    from tests.support.net import free_port
    work = machine(tmp_path / "w", tiny)
    result = build(work, "--cache-repo", f"docker://127.0.0.1:{free_port()}/cache",
                   cache=tmp_path / "cache")
    out = ok(result)
    assert "warning: the layer cache" in result.stderr + out
    assert "pulled" not in out


def test_a_hostile_cached_layer_fails_the_step_with_one_line(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    import urllib.request

    from tests.registry.conftest import error_lines
    from tests.registry.ocimake import Entry, archive, layer_tar, oci_layout
    from tests.support.registry import push_archive
    repo = ("--cache-repo", registry.ref("layers/hostile"))
    ok(build(machine(tmp_path / "one", tiny), *PLAIN, *repo, cache=tmp_path / "c1"))
    with urllib.request.urlopen(f"http://{registry.host}/v2/layers/hostile/tags/list") as r:
        tags = json.loads(r.read())["tags"]
    assert len(tags) == 2
    for tag in tags:  # every cached layer replaced by one that writes outside the root
        layout = tmp_path / tag
        oci_layout(layout, [layer_tar([Entry("../escape", b"x")])],
                   annotations={"org.acigen.cache-key": tag.removeprefix("acigen-")})
        push_archive(registry, archive(layout, tmp_path / f"{tag}.tar"), f"layers/hostile:{tag}")
    result = build(machine(tmp_path / "two", tiny), *PLAIN, *repo, cache=tmp_path / "c2")
    lines = error_lines(result)
    assert len(lines) == 1 and "member '../escape': its path '../escape' leaves the root" \
        in lines[0], lines
    assert not (tmp_path / "two" / "escape").exists() and not (tmp_path / "escape").exists()
