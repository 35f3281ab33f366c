"""`acigen run` as an ordinary user: an image built rootless runs in the
runtime's rootless mode, in the user namespace the build used, with the
image's own ids, the same capability rules, and the escape suite's
attacks blocked; a user without a subordinate range is told so in one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.chroot.test_escape import ATTACKS, verdicts
from tests.rootless.conftest import SINGLE_USER, USER
from tests.rootless.test_escape import UsersHost, hostile_work_dir
from tests.rootless.test_rootless import _busybox_base
from tests.support import rootless
from tests.support.leaks import mounts_under, processes_under
from tests.support.rootfs import busybox_tree, tar_of

STEPS = "-aci-packer-build-steps-"
# what the app prints: who it runs as, the in-image owners it sees, a file
# the build's cmd step wrote; then it exits with a status of its own
APP = ("id -u; id -g; stat -c %u:%g /srv/www /var/old/sub; cat /built; "
       "echo changed > /srv/www/new; exit 3")


def _build_as_user(work: Path, python: str, steps: list[dict], app: dict) -> Path:
    doc = {"name": "example.com/runme", "app": {"user": "0", "group": "0", **app},
           STEPS: steps}
    (work / "m.json").write_text(json.dumps(doc, indent=2) + "\n")
    rootless.give_to(work, USER)
    built = rootless.as_user(USER, [python, "-m", "acigen", "-b", "m.json"], work)
    assert built.returncode == 0, built.stdout + built.stderr
    return work / "m.aci"


def _run(user: str, python: str, work: Path, *args: str,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`acigen run ARGS` as USER, its image cache under WORK."""
    argv = ["env", f"XDG_CACHE_HOME={work / 'cache'}", python, "-m", "acigen", "run", *args]
    return rootless.as_user(user, argv, work, timeout=timeout)


def _nothing_left(work: Path) -> None:
    assert not mounts_under([work])
    assert not processes_under([work])
    assert list((work / "cache" / "acigen" / "run" / "scratch").iterdir()) == []


def _image(area: Path, python: str) -> Path:
    work = area / "build"
    work.mkdir()
    _busybox_base(work)
    sh = {"type": "cmd", "copy": False, "path": "/bin/busybox"}
    return _build_as_user(work, python, [
        {"type": "image", "path": "base.tar"},
        {**sh, "args": ["sh", "-c", "echo built-rootless > /built"]}],
        {"exec": ["/bin/busybox", "sh", "-c", APP]})


def test_an_image_built_rootless_runs_rootless_with_its_own_ids(area: Path,
                                                                python: str) -> None:
    aci = _image(area, python)
    work = aci.parent
    done = _run(USER, python, work, str(aci))
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == ["0", "0", "33:33", "100:101", "built-rootless"]
    assert done.stderr == ""
    # as another in-image user; the throw-away root forgot the last run's write
    done = _run(USER, python, work, "--exec", "/bin/busybox", str(aci), "--", "sh", "-c",
                "id -u; cat /srv/www/new 2>/dev/null || echo fresh")
    assert (done.returncode, done.stdout) == (0, "0\nfresh\n"), done.stderr
    app = {"exec": ["/bin/busybox", "sh", "-c", "id -u; id -g; touch /srv/www/mine && "
                    "stat -c %u /srv/www/mine"], "user": "33", "group": "33"}
    doc = json.loads((work / "m.json").read_text())
    doc["app"] = app
    (work / "m.json").write_text(json.dumps(doc))
    rootless.give_to(work, USER)
    built = rootless.as_user(USER, [python, "-m", "acigen", "-b", "m.json"], work)
    assert built.returncode == 0, built.stdout + built.stderr
    done = _run(USER, python, work, str(aci))
    assert (done.returncode, done.stdout) == (0, "33\n33\n33\n"), done.stderr
    _nothing_left(work)


def _cap_eff(out: str) -> int:
    [line] = [x for x in out.splitlines() if x.startswith("CapEff:")]
    return int(line.split()[1], 16)


def test_capabilities_only_narrow_and_cap_add_widens_with_a_warning(area: Path,
                                                                     python: str) -> None:
    work = area / "caps"
    tree = busybox_tree(work / "tree")
    tar_of(tree, work / "base.tar")
    subprocess.run(["rm", "-rf", str(tree)], check=True)
    script = ("grep CapEff /proc/self/status; mount -t tmpfs x /tmp 2>/dev/null "
              "&& echo mounted || echo no-mount")
    aci = _build_as_user(work, python, [{"type": "image", "path": "base.tar"}], {
        "exec": ["/bin/sh", "-c", script],
        "isolators": [
            {"name": "os/linux/capabilities-retain-set",
             "value": {"set": ["CAP_SYS_ADMIN", "CAP_CHOWN"]}},
            {"name": "resource/memory", "value": {"limit": "64Mi"}}]})
    narrowed = _run(USER, python, work, str(aci))
    assert narrowed.returncode == 0, narrowed.stderr
    assert _cap_eff(narrowed.stdout) == 1 << 0  # CHOWN only: SYS_ADMIN is not granted
    assert narrowed.stdout.split()[-1] == "no-mount"
    assert narrowed.stderr.splitlines() == [
        "acigen run: warning: the image asks to keep CAP_SYS_ADMIN, which only --cap-add "
        "CAP_SYS_ADMIN grants; not granted",
        "acigen run: warning: isolator resource/memory is not enforced: a rootless run has "
        "no cgroup of its own; ignored"]
    widened = _run(USER, python, work, "--cap-add", "sys_admin", str(aci))
    assert widened.returncode == 0, widened.stderr
    assert _cap_eff(widened.stdout) == (1 << 0) | (1 << 21)
    assert widened.stdout.split()[-1] == "mounted"  # in the container's own namespaces
    assert widened.stderr.splitlines()[0] == (
        "acigen run: warning: --cap-add sys_admin: the app holds more than the containers "
        "default capabilities, and can do more to the host")
    _nothing_left(work)


def test_without_a_subordinate_range_one_line(area: Path, python: str) -> None:
    tree = busybox_tree(area / "tree")
    tar_of(tree, area / "img.tar")  # never read: the range is checked first
    rootless.give_to(area, SINGLE_USER)
    done = _run(SINGLE_USER, python, area, "img.tar")
    assert done.returncode == 125
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "acigen run: error: acigen run as an ordinary user needs a subordinate id range "
        "(the image's owners are mapped into it); add a range to /etc/subuid and "
        "/etc/subgid: sudo usermod --add-subuids 100000-165535 --add-subgids "
        f"100000-165535 {SINGLE_USER}"]


@pytest.mark.parametrize("net", ["default", "host"])
def test_every_attack_fails_from_a_rootless_run(area: Path, python: str, net: str) -> None:
    """The escape suite's attacks as the app of an image built rootless, run
    by the same user: each is blocked, and the user's own file and process,
    which the user's ids could reach, are as they were."""
    host = UsersHost(area, USER)
    try:
        work = hostile_work_dir(area, host)
        aci = _build_as_user(work, python, [{"type": "image", "path": "hostile.tar"}], {
            "exec": ["/bin/sh", "-c", "/bin/sh /escape.sh; cat /results"]})
        done = _run(USER, python, work, "--net", net, str(aci))
        assert done.returncode == 0, done.stdout + done.stderr
        said = verdicts(done.stdout)
        assert [name for name in ATTACKS if said.get(name) != "blocked"] == [], said
        host.untouched()
        _nothing_left(work)
    finally:
        host.close()
