"""Benchmark: what the chroot-run sandbox costs per step.

    sudo .venv/bin/python bench/chroot_run.py [--runs 20] [--debian]

Every variant runs the same trivial program (`/bin/true`) in the same root,
so what is timed is the fixed cost of a step, not the program:

- chroot            `chroot ROOT /bin/true`: no isolation at all (the floor);
- aci-packer style  what the original tool did around a cmd step, in a
                    throwaway mount namespace so the host is safe: mount
                    proc, rbind + rslave /dev and /sys, copy resolv.conf and
                    hosts in, chroot, put the files back, umount -l;
- 2 interpreters    starting Python twice with our imports, nothing else: the
                    floor of a helper plus its namespace's init;
- by hand           `acigen-chroot-run ROOT /bin/true`: our sandbox (fresh
                    proc/dev/sys, build-time files, PID namespace and init,
                    teardown) on a plain directory;
- step              `python -m acigen.helpers.chroot_run --step ...`: what
                    ninja runs, i.e. the above plus wiping and mounting the
                    step's overlay layer and writing the stamp.

Prints medians and ratios against `chroot` and the aci-packer style.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen
from common import Variant, interleaved

from tests.support.rootfs import busybox_tree, debian_minbase_tree

ACI_PACKER_STYLE = r"""
set -e
R="$1"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"; mount --make-rslave "$R/dev"
mount --rbind /sys "$R/sys"; mount --make-rslave "$R/sys"
[ -e "$R/etc/resolv.conf" ] && mv "$R/etc/resolv.conf" "$R/etc/resolv.conf.bk"
cp /etc/resolv.conf "$R/etc/resolv.conf"
[ -e "$R/etc/hosts" ] && mv "$R/etc/hosts" "$R/etc/hosts.bk"
cp /etc/hosts "$R/etc/hosts"
chroot "$R" /bin/true
for f in resolv.conf hosts; do
  rm "$R/etc/$f"; [ -e "$R/etc/$f.bk" ] && mv "$R/etc/$f.bk" "$R/etc/$f"
done
umount "$R/proc"; umount -l "$R/dev"; umount -l "$R/sys"
"""


IMPORT_HELPER = "import acigen.helpers.chroot_run"
IMPORT_INIT = "import acigen.helpers.pidns_init"


def check(argv: list[str], cwd: Path | None = None) -> None:
    subprocess.run(argv, check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def step_setup(work: Path, root: Path) -> list[str]:
    """A base layer holding ROOT and a step file for `/bin/true` over it."""
    base = work / ".acigen" / "layers" / "00-base"
    (base / "tree").mkdir(parents=True)
    check(["cp", "-a", f"{root}/.", str(base / "tree")])
    spec = {"acigen": "0.1.0", "label": "bench", "layer": ".acigen/layers/01-true",
            "lower": [".acigen/layers/00-base"], "layer_mode": "auto",
            "log": ".acigen/logs/01-true.log",
            "step": {"type": "cmd", "path": "/bin/true", "args": [], "copy": False,
                     "env": {}, "workdir": "/", "chroot": {}}}
    (work / "step.json").write_text(json.dumps(spec))
    return [sys.executable, "-m", "acigen.helpers.chroot_run", "--step", "step.json",
            "--stamp", "01-true.stamp"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--debian", action="store_true",
                        help="a Debian minbase root instead of busybox")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acigen-bench-") as tmp:
        work = Path(tmp)
        root = work / "root"
        (debian_minbase_tree if args.debian else busybox_tree)(root)
        by_hand = shutil.which("acigen-chroot-run", path=str(Path(sys.executable).parent))
        assert by_hand, "install acigen (pip install -e .) first"
        step = step_setup(work / "build", root)
        variants = {
            "chroot": lambda: check(["chroot", str(root), "/bin/true"]),
            "aci-packer style": lambda: check(["unshare", "-m", "--propagation", "private",
                                               "sh", "-c", ACI_PACKER_STYLE, "-", str(root)]),
            "2 interpreters": lambda: (check([sys.executable, "-c", IMPORT_HELPER]),
                                       check([sys.executable, "-c", IMPORT_INIT])),
            "by hand": lambda: check([by_hand, "--log", str(work / "log"), str(root),
                                      "/bin/true"]),
            "step": lambda: check(step, cwd=work / "build"),
        }
        samples = interleaved({name: Variant(run) for name, run in variants.items()},
                              args.runs, warm_up=True)
        medians = {name: statistics.median(s.wall for s in runs)
                   for name, runs in samples.items()}
    floor, old = medians["chroot"], medians["aci-packer style"]
    print(f"root: {'Debian minbase' if args.debian else 'busybox'}, {args.runs} runs each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'variant':<18} {'median':>9} {'x chroot':>9} {'x aci-packer':>13}")
    for name, median in medians.items():
        print(f"{name:<18} {median * 1000:>7.1f}ms {median / floor:>9.1f} {median / old:>13.2f}")


if __name__ == "__main__":
    main()
