"""OCI archives of images built for real by acigen + ninja (the bash example,
and a multi-step image whose later steps delete what earlier ones made),
compared under runc with the ACI under `acigen run`: `acigen --oci` makes
both from the same layers in one build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.oci.test_oci import acigen_run, runc_run, skopeo_inspect, umoci_bundle
from tests.support.build import acigen, run_ninja
from tests.support.rootfs import busybox_tree, tar_of

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
STEPS = "-aci-packer-build-steps-"


def run_both(work: Path, name: str, args: list[str]) -> tuple[tuple[int, str], tuple[int, str]]:
    """(runc on the umoci-unpacked OCI image, acigen run on the ACI), each
    (exit status, stdout), the app's exec given ARGS."""
    archive = work / f"{name}.oci.tar"
    bundle = umoci_bundle(archive, work / "oci")
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] += args  # what `docker run IMAGE ARGS` does
    (bundle / "config.json").write_text(json.dumps(config))
    oci = runc_run(bundle)
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    aci = acigen_run(work / f"{name}.aci", "--", *args, env=env)
    assert aci.returncode != 125, aci.stderr
    return (oci.returncode, oci.stdout), (aci.returncode, aci.stdout)


def test_bash_example(tmp_path: Path, no_mount_leaks) -> None:
    work = tmp_path / "bash"
    shutil.copytree(EXAMPLES / "bash", work)
    acigen(work, "--oci", "bash.oci.tar", "bash.json")
    run_ninja(work)
    oci, aci = run_both(work, "bash", ["-c", "echo hello $((6 * 7)); exit 4"])
    assert oci == aci == (4, "hello 42\n")
    assert skopeo_inspect(f"oci-archive:{work / 'bash.oci.tar'}")["Labels"] == \
        {"version": "1.0.0"}


def test_gc_keeps_the_oci_archives_chunks(tmp_path: Path, no_mount_leaks) -> None:
    work = tmp_path / "bash"
    shutil.copytree(EXAMPLES / "bash", work)
    acigen(work, "--oci", "bash.oci.tar", "bash.json")
    run_ninja(work)
    chunks = work / ".acigen" / "chunks"
    before = sorted(p.name for p in chunks.iterdir())
    done = subprocess.run([sys.executable, "-m", "acigen", "gc"], cwd=work,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in chunks.iterdir()) == before
    assert len(list((chunks / "uses").iterdir())) == 2  # the ACI's and the OCI archive's


def test_hello_example(tmp_path: Path, no_mount_leaks) -> None:
    """The original README's first example, as the OCI image and as the ACI."""
    work = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", work)
    acigen(work, "--oci", "hello.oci.tar", "hello.json")
    run_ninja(work)
    oci, aci = run_both(work, "hello", [])
    assert oci == aci == (0, "Hello World\n")
    assert skopeo_inspect(f"oci-archive:{work / 'hello.oci.tar'}")["Os"] == "linux"


def test_multi_step_image_with_deletions(tmp_path: Path, no_mount_leaks) -> None:
    work = tmp_path / "multi"
    work.mkdir()
    tree = busybox_tree(tmp_path / "tree")
    (tree / "etc" / "old.conf").write_text("old\n")
    (tree / "srv" / "cache").mkdir(parents=True)
    (tree / "srv" / "cache" / "a").write_text("a\n")
    tar_of(tree, work / "base.tar.gz", "gzip")
    sh = "/bin/busybox"
    doc = {"name": "example.com/multi", "labels": [{"name": "version", "value": "2.0"}],
           "app": {"exec": ["/bin/sh", "-c"], "user": "0", "group": "0"},
           STEPS: [
               {"type": "image", "path": "base.tar.gz"},
               {"type": "cmd", "copy": False, "path": sh,
                "args": ["sh", "-c", "rm /etc/old.conf && echo new > /etc/new.conf"]},
               {"type": "cmd", "copy": False, "path": sh,
                "args": ["sh", "-c", "rm -rf /srv/cache && mkdir /srv/cache && "
                                     "echo b > /srv/cache/b"]},
           ]}
    (work / "multi.json").write_text(json.dumps(doc))
    acigen(work, "--oci", "multi.oci.tar", "multi.json")
    run_ninja(work)
    script = "cat /etc/new.conf; ls /srv/cache; ls /etc/old.conf 2>/dev/null; exit 5"
    oci, aci = run_both(work, "multi", [script])
    assert oci == aci == (5, "new\nb\n")
    assert len(skopeo_inspect(f"oci-archive:{work / 'multi.oci.tar'}")["Layers"]) == 3
