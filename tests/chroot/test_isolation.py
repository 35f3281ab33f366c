"""What a chroot step's command sees while it runs, and that none of it
(build-time files, kernel filesystems, daemons, mounts) outlives the step."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from tests.chroot.stepkit import Build, pids_with, sh
from tests.support.rootfs import busybox_tree

pytestmark = pytest.mark.usefixtures("no_mount_leaks")


# the nodes and links an OCI runtime always makes in a container's /dev
RUNTIME_DEV = ["fd", "full", "null", "ptmx", "random", "stderr", "stdin", "stdout", "tty",
               "urandom", "zero"]


def host_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


SEE_BUILD_FILES = ("cat /etc/resolv.conf > /seen-resolv; cat /etc/hosts > /seen-hosts; "
                   "/usr/sbin/policy-rc.d; echo $? > /seen-policy")


def test_build_time_files_are_there_while_the_command_runs_and_gone_after(
        build: Build, base: Path) -> None:
    tree = base / "tree"
    # Debian-like: resolv.conf is a link into /run, which the image does not have
    os.symlink("../run/systemd/resolve/stub-resolv.conf", tree / "etc" / "resolv.conf")
    (tree / "usr" / "sbin").mkdir(parents=True)
    (tree / "usr" / "sbin" / "policy-rc.d").write_text("#!/bin/sh\nexit 0\n")
    (tree / "usr" / "sbin" / "policy-rc.d").chmod(0o755)
    step = build.step("01-files", sh(SEE_BUILD_FILES, make_debian_policy_rc=True), [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert (step.tree / "seen-resolv").read_bytes() == host_bytes("/etc/resolv.conf")
    assert (step.tree / "seen-hosts").read_bytes() == host_bytes("/etc/hosts")
    assert (step.tree / "seen-policy").read_text() == "101\n"
    assert step.changes(base) == ["seen-hosts", "seen-policy", "seen-resolv"]
    # the link was covered, not followed: nothing was made at its target
    assert os.readlink(tree / "etc" / "resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert not (tree / "run").exists() and not (step.tree / "run").exists()


def test_missing_places_are_made_for_the_command_and_taken_out_after(
        build: Build, tmp_path: Path) -> None:
    bare = build.base(lambda tree: shutil.copytree(busybox_tree(tmp_path / "bb") / "bin",
                                                   tree / "bin", symlinks=True))
    assert sorted(os.listdir(bare / "tree")) == ["bin"]  # no etc, proc, dev, sys, usr
    before = os.stat(bare / "tree")
    step = build.step("01-bare", sh(SEE_BUILD_FILES + "; ls /proc/self/ > /seen-proc; "
                                    "ls /dev > /seen-dev; ls /sys > /seen-sys",
                                    make_debian_policy_rc=True), [bare])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert (step.tree / "seen-policy").read_text() == "101\n"
    assert "status" in (step.tree / "seen-proc").read_text()
    assert "null" in (step.tree / "seen-dev").read_text().split()
    assert "kernel" in (step.tree / "seen-sys").read_text().split()
    assert step.changes(bare) == ["seen-dev", "seen-hosts", "seen-policy", "seen-proc",
                                  "seen-resolv", "seen-sys"]
    assert os.stat(step.tree).st_mtime_ns != before.st_mtime_ns  # the command wrote at /


def test_what_the_command_writes_to_a_build_time_file_is_dropped_and_said(
        build: Build, base: Path) -> None:
    step = build.step("01-write", sh("echo 'nameserver 192.0.2.1' > /etc/resolv.conf"), [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.changes(base) == []
    assert "acigen: the command changed /etc/resolv.conf; build-time files are not kept " \
           "in the image, so the change is dropped" in step.log()


def test_settings_turn_mounts_and_files_off(build: Build, base: Path) -> None:
    step = build.step("01-off", sh("ls -A /proc /dev /sys > /seen; test -e /etc/resolv.conf "
                                   "|| echo no-resolv >> /seen; test -e /etc/hosts "
                                   "|| echo no-hosts >> /seen",
                                   mount_proc=False, mount_dev=False, mount_sys=False,
                                   copy_resolvconf=False, copy_hosts=False), [base])
    assert step.run().returncode == 0
    # /dev is always the runtime's tmpfs (its standard nodes must not reach
    # the layer); mount_dev adds pts, shm and mqueue
    # and /proc too: the runtime cannot start a process without one
    seen = (step.tree / "seen").read_text().split("\n\n")
    assert seen[0].split() == ["/dev:", *RUNTIME_DEV]
    assert "self" in seen[1].split()
    assert seen[2:] == ["/sys:\nno-resolv\nno-hosts\n"]
    assert "mount_proc is off, but the OCI runtime needs a /proc" in step.log()


def test_the_kernel_filesystems_are_fresh_and_hold_no_host_devices(
        build: Build, base: Path) -> None:
    script = ("ls -A /dev > /seen-dev; ls /proc | grep -c '^[0-9]' > /seen-pids; "
              "touch /sys/x 2> /seen-sys; echo 1 2> /seen-procsys > /proc/sys/kernel/ostype; "
              "ls /dev/pts > /seen-pts; touch /dev/shm/x && stat -c %a /dev/shm > /seen-shm; "
              "echo scratch > /dev/scratch; head -c 4 /dev/urandom | wc -c > /seen-urandom")
    step = build.step("01-kfs", sh(script), [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert (step.tree / "seen-dev").read_text().split() == sorted(
        [*RUNTIME_DEV, "mqueue", "pts", "shm"])
    assert int((step.tree / "seen-pids").read_text()) <= 3  # sh (PID 1), ls, grep
    assert "Read-only file system" in (step.tree / "seen-sys").read_text()
    assert "Read-only file system" in (step.tree / "seen-procsys").read_text()
    assert (step.tree / "seen-pts").read_text().split() == ["ptmx"]
    assert (step.tree / "seen-shm").read_text() == "1777\n"
    assert (step.tree / "seen-urandom").read_text().strip() == "4"
    assert step.changes(base) == ["seen-dev", "seen-pids", "seen-procsys",
                                  "seen-pts", "seen-shm", "seen-sys", "seen-urandom"]


def test_daemons_die_with_the_step(build: Build, base: Path) -> None:
    # one plain background job, one double-forked daemon in its own session
    script = ("sleep 1001.25 & "
              "setsid sh -c 'setsid sleep 1002.25 & exit 0'; "
              "echo started")
    step = build.step("01-daemon", sh(script), [base])
    result = step.run(timeout=120)
    assert result.returncode == 0, result.stderr
    assert "started" in step.log()
    assert pids_with("sleep 1001.25") == [] and pids_with("sleep 1002.25") == []


def test_the_command_cannot_rename_the_host(build: Build, base: Path) -> None:
    host = socket.gethostname()
    step = build.step("01-uts", sh("hostname renamed-by-a-package 2> /refused; "
                                   "hostname > /seen"), [base])
    assert step.run().returncode == 0
    assert "not permitted" in (step.tree / "refused").read_text()  # no CAP_SYS_ADMIN
    assert (step.tree / "seen").read_text() == host + "\n"
    assert socket.gethostname() == host


def test_the_command_cannot_mount(build: Build, base: Path) -> None:
    (base / "tree" / "mnt").mkdir()
    step = build.step("01-mounts", sh("mount -t tmpfs none /mnt 2> /seen; echo $? >> /seen; "
                                      "touch /mnt/file"), [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert "permission denied" in (step.tree / "seen").read_text()
    assert step.changes(base) == ["mnt", "mnt/file", "seen"]  # /mnt is still the image's


def test_copy_mode_layers_come_out_just_as_clean(build: Build, base: Path) -> None:
    # copy mode: the step changes a snapshot of the tree below, no overlayfs
    tree = base / "tree"
    os.symlink("../run/resolvconf/resolv.conf", tree / "etc" / "resolv.conf")
    (tree / "usr").mkdir()
    step = build.step("01-copy-mode", sh(SEE_BUILD_FILES + "; echo done > /done",
                                         make_debian_policy_rc=True), [base], layer_mode="copy")
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert (step.tree / "seen-policy").read_text() == "101\n"
    assert (step.tree / "seen-resolv").read_bytes() == host_bytes("/etc/resolv.conf")
    mine = {rel for rel in step.layer_entries() if not rel.startswith("seen-")}
    assert mine == {rel for rel in (str(p.relative_to(tree)) for p in tree.rglob("*"))} | {"done"}
    for rel in ("etc", "usr", "proc", "dev", "sys"):  # times put back after scaffolding
        assert os.stat(step.tree / rel).st_mtime_ns == os.stat(tree / rel).st_mtime_ns, rel
    assert not (step.tree / "usr" / "sbin").exists()
    assert os.readlink(step.tree / "etc" / "resolv.conf") == "../run/resolvconf/resolv.conf"


@pytest.mark.parametrize(("network", "interfaces"), [("none", ["lo"]), ("host", None)])
def test_a_step_without_network_sees_only_loopback(build: Build, base: Path, network: str,
                                                   interfaces: list[str] | None) -> None:
    step = build.step("01-net", {**sh("cat /proc/net/dev > /seen"), "network": network},
                      [base])
    assert step.run().returncode == 0
    seen = [line.split(":")[0].strip() for line in
            (step.tree / "seen").read_text().splitlines()[2:]]
    host = [line.split(":")[0].strip() for line in
            Path("/proc/net/dev").read_text().splitlines()[2:]]
    assert sorted(seen) == sorted(interfaces or host)
    assert len(host) > 1  # the host has more than loopback, or this test shows nothing


# crun refuses a hybrid cgroup hierarchy whose v2 part holds controllers; in a
# mount namespace of the test's own without that part it uses the v1 controllers
# (the host's mounts are never changed)
WITHOUT_CGROUP2 = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c",
                   "if mountpoint -q /sys/fs/cgroup/unified; then "
                   "umount -l /sys/fs/cgroup/unified; fi; exec \"$0\" \"$@\""]


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_device_nodes_in_the_image_cannot_be_opened(build: Build, base: Path,
                                                     tmp_path: Path, runtime: str) -> None:
    """A hostile base image that carries the host disk's block device and
    /dev/mem as nodes (outside /dev: the runtime's /dev covers its own): the
    device cgroup refuses to open either, under crun too, which (unlike runc)
    adds no device rules of its own: the step's config must hold them."""
    disk = os.stat(tmp_path).st_dev

    def host_devices(tree: Path) -> None:
        (tree / "hostdev").mkdir()
        os.mknod(tree / "hostdev" / "disk", 0o660 | stat.S_IFBLK, disk)
        os.mknod(tree / "hostdev" / "mem", 0o660 | stat.S_IFCHR, os.makedev(1, 1))

    devices = build.base(host_devices, name="00-devices")
    script = ("head -c 512 /hostdev/disk > /dev/null 2> /seen-disk; "
              "head -c 1 /hostdev/mem > /dev/null 2> /seen-mem; true")
    step = build.step("01-devices", sh(script), [devices, base], runtime=runtime)
    result = step.run(wrapper=WITHOUT_CGROUP2 if runtime == "crun" else None)
    assert result.returncode == 0, result.stderr
    for seen in ("seen-disk", "seen-mem"):  # EPERM: the device cgroup (nodev: EACCES)
        assert "Operation not permitted" in (step.tree / seen).read_text(), seen
