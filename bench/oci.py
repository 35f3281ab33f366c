"""Benchmark: writing an OCI archive, against the obvious alternative.

    sudo .venv/bin/python bench/oci.py [--runs N]

On a Debian bookworm minbase tree (the test suite's cached tarball), as one
layer, median wall time of N runs of:
  - acigen-oci, gzip, cold chunk cache (every chunk compressed, in parallel);
  - acigen-oci, gzip, warm cache (an unchanged rebuild: every chunk reused);
  - acigen-oci, zstd, cold;
  - the obvious alternative: `tar --sort=name | gzip -6 -n` of the same tree
    (one layer blob only: no config, manifest or archive around it);
  - `acigen run` of the same tree packed as an ACI: first run (hash + unpack
    into the run cache) and later runs (hash, overlay, runc), against
    `runc run` of an already unpacked bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Variant, median, repeated, use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen

from tests.support.rootfs import debian_minbase_tarball

PY = sys.executable


def median_time(runs: int, prepare: Callable[[], None], action: Callable[[], None]) -> float:
    """The median wall time of ACTION over RUNS runs, each after PREPARE (untimed)."""
    return median(repeated(Variant(action, prepare), runs)).wall


def sh(cmd: list[str] | str, **kw: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, shell=isinstance(cmd, str),
                   **kw)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="acigen-bench-oci-"))
    try:
        tree = work / "layer" / "tree"
        tree.mkdir(parents=True)
        sh(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf",
            str(debian_minbase_tarball()), "-C", str(tree)])
        size = int(subprocess.run(["du", "-sb", str(tree)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
        manifest = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "bench/minbase",
                    "labels": [{"name": "os", "value": "linux"},
                               {"name": "arch", "value": "amd64"}],
                    "app": {"exec": ["/bin/true"], "user": "0", "group": "0"}}
        cache = work / "chunks"

        def image(compression: str) -> Path:
            path = work / f"image-{compression}.json"
            path.write_text(json.dumps({
                "manifest": manifest, "layers": [str(work / "layer")], "layer_mode": "copy",
                "compression": "gzip", "oci_compression": compression,
                "source_date_epoch": 0, "chunk_cache": str(cache)}))
            return path

        def oci(compression: str) -> Callable[[], None]:
            return lambda: sh([PY, "-m", "acigen.helpers.oci", "--image",
                               str(image(compression)), "--out", str(work / "out.oci.tar")])

        def cold() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        results = {
            "acigen-oci gzip, cold cache": median_time(runs, cold, oci("gzip")),
            "acigen-oci gzip, warm cache": median_time(runs, oci("gzip"), oci("gzip")),
            "acigen-oci zstd, cold cache": median_time(runs, cold, oci("zstd")),
            "tar --sort=name | gzip -6 -n": median_time(runs, lambda: None, lambda: sh(
                f"tar --sort=name --numeric-owner -C {tree} -cf - . | gzip -6 -n "
                f"> {work / 'plain.tar.gz'}")),
        }
        results.update(run_times(work, tree, manifest, runs))
        print(f"tree: {size / 1e6:.0f} MB, {os.cpu_count()} cores, median of {runs} runs")
        base = results["tar --sort=name | gzip -6 -n"]
        for name, seconds in results.items():
            print(f"  {name:38s} {seconds:7.2f} s   {seconds / base:5.2f}x tar|gzip")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_times(work: Path, tree: Path, manifest: dict, runs: int) -> dict[str, float]:
    (work / "m.json").write_text(json.dumps(manifest))
    aci = work / "minbase.aci"
    sh([PY, "-m", "acigen.helpers.pack", "--manifest", str(work / "m.json"), "--rootfs",
        str(tree), "-o", str(aci)])
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "xdg"))
    run = [PY, "-m", "acigen.helpers.run", str(aci)]
    bundle = work / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    sh(["cp", "-a", f"{tree}/.", str(bundle / "rootfs")])
    sh(["runc", "spec", "--bundle", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["/bin/true"])
    (bundle / "config.json").write_text(json.dumps(config))
    return {
        "acigen run, first (unpack)": median_time(
            runs, lambda: shutil.rmtree(work / "xdg", ignore_errors=True),
            lambda: sh(run, env=env)),
        "acigen run, cached": median_time(runs, lambda: None, lambda: sh(run, env=env)),
        "runc run of an unpacked bundle": median_time(
            runs, lambda: None, lambda: sh(f"runc run -b {bundle} bench-$$ </dev/null")),
    }


if __name__ == "__main__":
    raise SystemExit(main())
