"""Real ninja over a hand-written build file: fetch (restat) then unpack.

The fetch edge runs on every build (it depends on a phony FORCE); it
rewrites its .ref only when the download changed, so restat skips the
unpack when the server answered 304, and reruns it when the file changed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.image.conftest import REPO
from tests.support.httpserver import FileServer, Resource
from tests.support.tools import ninja

BUILD_NINJA = """\
ninja_required_version = 1.10
python = {python}
pool fetch
  depth = 4
rule acigen_fetch
  command = env PYTHONPATH={repo} $python -m acigen.helpers.fetch --spec $in --ref $out
  description = fetch $url
  pool = fetch
  restat = 1
rule acigen_unpack
  command = env PYTHONPATH={repo} $python -m acigen.helpers.unpack --step $in --stamp $out
  description = unpack-layer
build FORCE: phony
build .acigen/fetch/base.ref: acigen_fetch .acigen/fetch/base.json | FORCE
  url = {url}
build .acigen/stamps/01-base.stamp: acigen_unpack .acigen/steps/01-base.json $
    | .acigen/fetch/base.ref
default .acigen/stamps/01-base.stamp
"""


def tar_bytes(content: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/version")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content.encode()))
    return buf.getvalue()


def run_ninja(build: Path) -> str:
    result = subprocess.run([ninja(), "-C", str(build)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_restat_skips_the_unpack_when_nothing_changed(tmp_path: Path,
                                                      no_mount_leaks: None) -> None:
    build = tmp_path / "build"
    (build / ".acigen" / "fetch").mkdir(parents=True)
    (build / ".acigen" / "steps").mkdir(parents=True)
    resource = Resource(tar_bytes("one"), etag='"1"')
    with FileServer() as server:
        url = server.add("/base.tar", resource)
        (build / "build.ninja").write_text(BUILD_NINJA.format(python=sys.executable,
                                                              repo=REPO, url=url))
        (build / ".acigen" / "fetch" / "base.json").write_text(json.dumps(
            {"url": url, "locks": [], "offline": False, "cache_dir": str(tmp_path / "cache")}))
        (build / ".acigen" / "steps" / "01-base.json").write_text(json.dumps(
            {"acigen": "0.1.0", "label": "t: base", "layer": ".acigen/layers/01-base",
             "lower": [], "layer_mode": "auto", "log": ".acigen/logs/01-base.log",
             "step": {"type": "image", "ref": ".acigen/fetch/base.ref"}}))
        version = build / ".acigen" / "layers" / "01-base" / "tree" / "etc" / "version"
        stamp = build / ".acigen" / "stamps" / "01-base.stamp"

        first = run_ninja(build)
        assert "unpack-layer" in first and version.read_text() == "one"
        made = stamp.stat().st_mtime_ns

        second = run_ninja(build)  # the server says 304: the ref stays, no unpack
        assert "fetch" in second and "unpack-layer" not in second
        assert stamp.stat().st_mtime_ns == made
        assert server.requests[-1].status == 304

        resource.body, resource.etag = tar_bytes("two"), '"2"'
        third = run_ninja(build)  # a new file: new ref, the unpack runs again
        assert "unpack-layer" in third and version.read_text() == "two"
        assert stamp.stat().st_mtime_ns != made
