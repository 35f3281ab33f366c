"""A hostile image's ways out, tried from a cmd step and from an ansible step.

Every attack (escape/attacks.c) runs twice.  First in a plain chroot as
root with every capability, /proc, /sys and the host's devices mounted, as
chroot builders (and the original tool) ran steps: there each must escape,
so we know it is real on this machine (one the machine cannot even try, like
/proc/kcore on a kernel without it, is left out).  Then from a build step of
a hostile image: there every one must be blocked, and the host's sentinel
file, mounts and processes must be as they were.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chroot.stepkit import Build, sh
from tests.support.cprogram import static_program
from tests.support.rootfs import busybox_tree

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

SOURCE = Path(__file__).parent / "escape" / "attacks.c"
ATTACKS = ("proc1root", "procroots", "doublechroot", "mknod-mount", "remount-proc-sys",
           "remount-sys", "sysrq-trigger", "core-pattern", "uevent-helper", "load-module",
           "ptrace", "open-by-handle", "user-namespace", "new-proc", "keyctl", "bpf", "kcore",
           "timer-list", "bind-root", "block-devices", "sys-admin", "iopl", "raw-socket",
           "signal-host", "dmesg", "setns-host")
# Where a control differs from a chroot in the host's PID namespace: the
# kernel refuses new user namespaces to a chrooted process (so that one runs
# unchrooted), and /proc/1/root escapes where PID 1 stays outside the chroot
# (as acigen's own init did).
UNCHROOTED = ("user-namespace",)
INIT_OUTSIDE = ("proc1root",)
SENTINEL_TEXT = "the host's own file\n"
MIN_ATTACKS = 15


class Host:
    """What the attacks aim at: a sentinel file and a process of the host."""

    def __init__(self, tmp: Path) -> None:
        self.sentinel = tmp / "host-sentinel"
        self.sentinel.write_text(SENTINEL_TEXT)
        self.victim = subprocess.Popen(["sleep", "3600"])
        dev = self.sentinel.stat().st_dev
        self.args = {"proc1root": [str(self.sentinel)], "procroots": [str(self.sentinel)],
                     "doublechroot": [str(self.sentinel)], "ptrace": [str(self.victim.pid)],
                     "new-proc": [str(self.victim.pid)], "signal-host": [str(self.victim.pid)],
                     "setns-host": [str(self.victim.pid)],
                     "mknod-mount": [str(os.major(dev)), str(os.minor(dev))]}

    def script(self, names: list[str]) -> str:
        """A shell script that runs NAMES and records what each said in /results."""
        lines = [" ".join(["/attacks", name, *self.args.get(name, [])]) + " >> /results 2>&1"
                 for name in names]
        return "\n".join(["rm -f /results", *lines, "exit 0", ""])

    def untouched(self) -> None:
        assert self.sentinel.read_text() == SENTINEL_TEXT
        assert self.victim.poll() is None
        status = Path(f"/proc/{self.victim.pid}/status").read_text()
        assert "TracerPid:\t0\n" in status

    def close(self) -> None:
        self.victim.kill()
        self.victim.wait()


@pytest.fixture(scope="module")
def attacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return static_program(SOURCE, tmp_path_factory.mktemp("escape") / "attacks")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    made = Host(tmp_path)
    yield made
    made.close()


def hostile_tree(tree: Path, attacks: Path, host: Host) -> None:
    busybox_tree(tree)
    shutil.copy2(attacks, tree / "attacks")
    (tree / "escape.sh").write_text(host.script(list(ATTACKS)))


def verdicts(results: str) -> dict[str, str]:
    """attack name -> 'escaped' or 'blocked', from what the attacks printed."""
    found = {}
    for line in results.splitlines():
        verdict, _, rest = line.partition(" ")
        found[rest.split(":", 1)[0]] = verdict
    return found


def plain_chroot(tree: Path, attacks: Path, host: Host) -> dict[str, str]:
    """Every attack in a chroot as root, with the host's kernel filesystems."""
    mounts = ("mount -t proc proc /proc; mount -t sysfs sysfs /sys; "
              "mount -t devtmpfs devtmpfs /dev; mkdir -p /tmp")
    inside = [name for name in ATTACKS if name not in (*UNCHROOTED, *INIT_OUTSIDE)]
    script = mounts + "\n" + host.script(inside)
    subprocess.run(["unshare", "--mount", "--fork", "chroot", str(tree), "/bin/sh", "-c", script],
                   check=True, timeout=120)
    said = (tree / "results").read_text()
    for name in UNCHROOTED:
        said += subprocess.run(["unshare", "--mount", "--fork", str(attacks), name],
                               capture_output=True, text=True, timeout=60).stdout
    for name in INIT_OUTSIDE:
        run = (f'mount -t proc proc "$1/proc"; chroot "$1" /attacks {name} '
               f'{" ".join(host.args.get(name, []))}')
        said += subprocess.run(["unshare", "--mount", "--pid", "--fork", "sh", "-c", run, "sh",
                                str(tree)], capture_output=True, text=True, timeout=60).stdout
    host.sentinel.write_text(SENTINEL_TEXT)  # the control wrote to it: start again
    return verdicts(said)


@pytest.fixture(autouse=True)
def real_attacks(tmp_path: Path, attacks: Path, host: Host) -> list[str]:
    """The attacks that escape a plain chroot on this machine."""
    tree = tmp_path / "control"
    hostile_tree(tree, attacks, host)
    control = plain_chroot(tree, attacks, host)
    real = [name for name in ATTACKS if control.get(name) == "escaped"]
    assert len(real) >= MIN_ATTACKS, f"only {real} escape a plain chroot here: {control}"
    return real


def check_all_blocked(results: str, host: Host) -> None:
    """Every attack, real here or not, is blocked; the host is as it was."""
    said = verdicts(results)
    assert [name for name in ATTACKS if said.get(name) != "blocked"] == [], results
    host.untouched()


def test_every_attack_fails_from_a_cmd_step(tmp_path: Path, attacks: Path, host: Host) -> None:
    build = Build(tmp_path / "build")
    base = build.base(lambda tree: hostile_tree(tree, attacks, host))
    step = build.step("01-hostile", sh("/bin/sh /escape.sh"), [base])
    result = step.run(timeout=300)
    assert result.returncode == 0, result.stderr + step.log()
    check_all_blocked((step.tree / "results").read_text(), host)


def test_every_attack_fails_from_an_ansible_step(tmp_path: Path, attacks: Path, host: Host) -> None:
    build = Build(tmp_path / "build")
    build.dir.mkdir(parents=True)
    (build.dir / "hostile.yml").write_text(
        "- hosts: aci\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.raw: /bin/sh /escape.sh\n")
    base = build.base(lambda tree: hostile_tree(tree, attacks, host))
    step = build.step("01-hostile", {"type": "ansible", "playbook": "hostile.yml"}, [base])
    result = step.run(timeout=300)
    assert result.returncode == 0, result.stderr + step.log()
    check_all_blocked((step.tree / "results").read_text(), host)
