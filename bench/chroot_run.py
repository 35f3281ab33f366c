"""Benchmark: what a chroot step costs per step, and what of it is ours.

    sudo .venv/bin/python bench/chroot_run.py [--runs 20] [--debian] [--python PATH] [--crun]

Every variant runs the same trivial program (`/bin/true`) in the same root,
so what is timed is the fixed cost of a step, not the program:

- chroot            `chroot ROOT /bin/true`: no isolation at all (the floor);
- aci-packer style  what the original tool did around a cmd step, in a
                    throwaway mount namespace so the host is safe: mount
                    proc, rbind + rslave /dev and /sys, copy resolv.conf and
                    hosts in, chroot, put the files back, umount -l;
- bare runc         `runc run` of a bundle made by `runc spec` (the runtime's
                    own defaults, no seccomp profile): the container alone;
- confined runc     `runc run` of the config a step's container gets (the
                    containers seccomp profile, masked and read-only paths,
                    fresh /proc, /dev and /sys): what issue 13 requires, with
                    nothing of acigen's Python around it;
- python            `python -I -c pass`: an interpreter with its site
                    packages, the floor of any Python helper;
- interpreter       starting Python with the helper's imports (those a cmd
                    step loads), nothing else;
- by hand           `acigen-chroot-run ROOT /bin/true`: the step's container
                    (confinement, build-time files, teardown) on a plain
                    directory;
- step              `python -I -m acigen.helpers.chroot_run --step ...`: what
                    ninja runs, i.e. the above plus wiping and mounting the
                    step's overlay layer and writing the stamp.

--python times another installation of acigen (say, a plain `pip install .`
in a venv of its own: an editable install's import hook costs every Python
process ~10 ms).  --crun adds crun: a bare run, one with the step's
confinement (device rules included: crun adds none of its own), and the step with
`--runtime crun`.  crun refuses a hybrid cgroup hierarchy whose v2 part
holds a controller; on such a host these variants run in a mount namespace
of their own without the v2 mount (never changed on the host), where crun
uses the v1 controllers (pids limit and device rules included).

Prints medians and ratios against `chroot`, the aci-packer style and a bare
`runc run` (bench/run's row 9 reports the last).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen
from common import Variant, interleaved, median

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


IMPORT_HELPER = "import acigen.helpers.chroot_run.__main__, acigen.helpers.chroot_run.cmd_step"
BARE_NAME = "acigen-bench-bare"
CONFINED_NAME = "acigen-bench-confined"
CGROUP2_IN_HYBRID = "/sys/fs/cgroup/unified"


def check(argv: list[str], cwd: Path | None = None) -> None:
    subprocess.run(argv, check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def step_setup(work: Path, root: Path, python: str = sys.executable,
               runtime: str | None = None) -> list[str]:
    """A base layer holding ROOT and a step file for `/bin/true` over it."""
    base = work / ".acigen" / "layers" / "00-base"
    (base / "tree").mkdir(parents=True)
    check(["cp", "-a", f"{root}/.", str(base / "tree")])
    spec = {"acigen": "0.1.0", "label": "bench", "layer": ".acigen/layers/01-true",
            "lower": [".acigen/layers/00-base"], "layer_mode": "auto",
            "log": ".acigen/logs/01-true.log",
            "step": {"type": "cmd", "path": "/bin/true", "args": [], "copy": False,
                     "env": {}, "workdir": "/", "chroot": {}}}
    if runtime:
        spec["runtime"] = runtime
    (work / "step.json").write_text(json.dumps(spec))
    return [python, "-I", "-m", "acigen.helpers.chroot_run", "--step", "step.json",
            "--stamp", "01-true.stamp"]


def bare_runc_setup(work: Path, root: Path) -> list[str]:
    """A bundle of the runtime's own defaults, running /bin/true in a copy of ROOT."""
    bundle = work / "bare"
    (bundle / "rootfs").mkdir(parents=True)
    check(["cp", "-a", f"{root}/.", str(bundle / "rootfs")])
    check(["runc", "spec", "--bundle", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(args=["/bin/true"], terminal=False)
    (bundle / "config.json").write_text(json.dumps(config))
    return ["runc", "run", "--bundle", str(bundle), BARE_NAME]


def confined_runc_setup(work: Path, root: Path, runtime: str = "runc") -> list[str]:
    """A bundle with the config a cmd step's container gets, running /bin/true
    (its device rules included, which crun needs: it adds none of its own)."""
    from acigen.helpers.chroot_run.job import BASE_ENV, Process, step_config
    from acigen.specs import ChrootSettings
    bundle = work / f"confined-{runtime}"
    (bundle / "rootfs").mkdir(parents=True)
    check(["cp", "-a", f"{root}/.", str(bundle / "rootfs")])
    config = step_config(ChrootSettings(), Process(["/bin/true"], dict(BASE_ENV), "/"))
    config["root"]["path"] = "rootfs"
    (bundle / "config.json").write_text(json.dumps(config))
    return [runtime, "run", "--bundle", str(bundle), f"{CONFINED_NAME}-{runtime}"]


def step_variants(work: Path, root: Path, python: str = sys.executable) -> dict[str, Variant]:
    """A bare `runc run`, one with a step's confinement, and a whole cmd step,
    all running /bin/true in ROOT."""
    bare = bare_runc_setup(work, root)
    confined = confined_runc_setup(work, root)
    step = step_setup(work / "build", root, python)
    return {"bare runc": Variant(lambda: check(bare)),
            "confined runc": Variant(lambda: check(confined)),
            "step": Variant(lambda: check(step, cwd=work / "build"))}


def crun_variants(work: Path, root: Path, python: str) -> dict[str, Variant]:
    """A bare `crun run` (of step_variants' bare bundle), one with a step's
    confinement, and a cmd step with `--runtime crun`, each where crun accepts
    this host's cgroups."""
    bare = ["crun", "run", "--bundle", str(work / "bare"), BARE_NAME + "-crun"]
    confined = confined_runc_setup(work, root, "crun")
    step = step_setup(work / "build-crun", root, python, runtime="crun")
    return {"bare crun": Variant(lambda: check_v1(bare)),
            "confined crun": Variant(lambda: check_v1(confined)),
            "step (crun)": Variant(lambda: check_v1(step, cwd=work / "build-crun"))}


def check_v1(argv: list[str], cwd: Path | None = None) -> None:
    """check(ARGV), in a mount namespace without the hybrid hierarchy's v2 part."""
    subprocess.run(argv, check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, preexec_fn=_hide_cgroup2)


def _hide_cgroup2() -> None:
    """In the child: a mount namespace of its own, without CGROUP2_IN_HYBRID."""
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_slave, mnt_detach = 0x20000, 0x4000, 0x80000, 2
    if libc.unshare(clone_newns) != 0 or \
            libc.mount(None, b"/", None, ms_rec | ms_slave, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot enter a mount namespace")
    if os.path.ismount(CGROUP2_IN_HYBRID) and \
            libc.umount2(CGROUP2_IN_HYBRID.encode(), mnt_detach) != 0:
        raise OSError(ctypes.get_errno(), f"cannot unmount {CGROUP2_IN_HYBRID}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--debian", action="store_true",
                        help="a Debian minbase root instead of busybox")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter whose acigen is timed (default: this one)")
    parser.add_argument("--crun", action="store_true", help="time crun too")
    args = parser.parse_args()
    python = args.python
    with tempfile.TemporaryDirectory(prefix="acigen-bench-") as tmp:
        work = Path(tmp)
        root = work / "root"
        (debian_minbase_tree if args.debian else busybox_tree)(root)
        by_hand = shutil.which("acigen-chroot-run", path=str(Path(python).parent))
        assert by_hand, "install acigen (pip install -e .) first"
        variants = {
            "chroot": Variant(lambda: check(["chroot", str(root), "/bin/true"])),
            "aci-packer style": Variant(lambda: check(["unshare", "-m", "--propagation",
                                                       "private", "sh", "-c", ACI_PACKER_STYLE,
                                                       "-", str(root)])),
            "python": Variant(lambda: check([python, "-I", "-c", "pass"])),
            "interpreter": Variant(lambda: check([python, "-I", "-c", IMPORT_HELPER])),
            "by hand": Variant(lambda: check([by_hand, "--log", str(work / "log"), str(root),
                                              "/bin/true"])),
            **step_variants(work, root, python),
            **(crun_variants(work, root, python) if args.crun else {}),
        }
        samples = interleaved(variants, args.runs, warm_up=True)
        medians = {name: median(runs).wall for name, runs in samples.items()}
    floor, old, bare = medians["chroot"], medians["aci-packer style"], medians["bare runc"]
    print(f"root: {'Debian minbase' if args.debian else 'busybox'}, {args.runs} runs each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, {python}")
    print(f"{'variant':<18} {'median':>9} {'x chroot':>9} {'x aci-packer':>13} {'x runc':>7}")
    for name, middle in medians.items():
        print(f"{name:<18} {middle * 1000:>7.1f}ms {middle / floor:>9.1f} {middle / old:>13.2f}"
              f" {middle / bare:>7.2f}")


if __name__ == "__main__":
    main()
