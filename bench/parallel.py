"""Two independent images in one build: `ninja -j2` against `ninja -j1`.

Each image has its own chain (its own base archive, a command, a gzip
pack), so nothing is shared and ninja may run the two chains side by side.
Every run is a clean build in a fresh directory (fresh layers and chunk
cache; the download-free bases are local archives).  Prints the median
wall time of each and the ratio.

    sudo .venv/bin/python bench/parallel.py [--runs 5] [--base minbase|busybox]

minbase (default): the Debian bookworm minbase tarball of the test cache,
once as .tar and once as .tar.gz (two different bases); busybox: a tiny
root, where the fixed costs of starting helpers dominate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Variant, interleaved, median, repeated, use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen

from tests.support.rootfs import busybox_tree, debian_minbase_tarball, tar_of

STEPS = "-aci-packer-build-steps-"


def bases(kind: str, where: Path) -> list[Path]:
    """Two different archives of the same root (different layer keys)."""
    if kind == "busybox":
        tree = busybox_tree(where / "tree")
        return [tar_of(tree, where / "a.tar"), tar_of(tree, where / "b.tar.gz", "gzip")]
    plain = debian_minbase_tarball()
    gz = where / "minbase.tar.gz"
    with open(gz, "wb") as out:
        subprocess.run(["gzip", "-1", "-c", str(plain)], stdout=out, check=True)
    return [plain, gz]


def manifest(path: Path, base: Path, name: str) -> None:
    work = ("for i in $(seq 1 20000); do echo $i; done | md5sum > /etc/sum; "
            f"echo {name} > /etc/who")
    path.write_text(json.dumps({
        "name": f"example.com/{name}",
        "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
        STEPS: [{"type": "image", "path": str(base), "devices": True},
                {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", work]}]}))


def clean_build(template: Path, jobs: int) -> Variant:
    """`ninja -jJOBS` in a fresh copy of TEMPLATE, generated (untimed) before each run."""
    work = template.parent / f"j{jobs}"

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        subprocess.run([sys.executable, "-m", "acigen", "a.json", "b.json"], cwd=work,
                       check=True)

    def build() -> None:
        import ninja as ninja_pkg
        result = subprocess.run([os.path.join(ninja_pkg.BIN_DIR, "ninja"), f"-j{jobs}"],
                                cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"the build failed:\n{result.stdout}{result.stderr}")

    return Variant(build, prepare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base", choices=("minbase", "busybox"), default="minbase")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/parallel.py builds images: run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        for name, base in zip("ab", bases(args.base, Path(tmp)), strict=True):
            manifest(template / f"{name}.json", base, name)
        builds = {f"-j{jobs}": clean_build(template, jobs) for jobs in (1, 2)}
        repeated(builds["-j2"], 1)  # warm the page cache and Python's bytecode
        samples = interleaved(builds, args.runs)  # in turns, so drift affects both alike
    times = {jobs: [sample.wall for sample in samples[f"-j{jobs}"]] for jobs in (1, 2)}
    medians = {jobs: median(samples[f"-j{jobs}"]).wall for jobs in (1, 2)}
    print(f"two independent images ({args.base}), {args.runs} clean builds each, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    for jobs in (1, 2):
        print(f"  ninja -j{jobs}: median {medians[jobs]:6.2f} s   "
              f"(runs: {', '.join(f'{t:.2f}' for t in times[jobs])})")
    print(f"  -j2 / -j1 = {medians[2] / medians[1]:.2f}  "
          f"(speed-up {medians[1] / medians[2]:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
