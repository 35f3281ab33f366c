"""The same manifest gives byte-identical images built by root and built
rootless by a user with a subordinate id range; without a range, the
single-id mode builds what needs no other ids and says what to do when a
step needs more; a build directory is never shared by root and a user."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.rootless.conftest import SINGLE_USER, USER
from tests.support import rootless
from tests.support.leaks import mounts_under, processes_under
from tests.support.procs import pids_with
from tests.support.rootfs import busybox_tree, debian_minbase_tarball, tar_of

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
PLAYBOOKS = Path(__file__).resolve().parent.parent / "chroot" / "ansible"
STEPS = "-aci-packer-build-steps-"

# a base whose owners are not all root, with a setuid program and a
# file capability, a directory the next step renames (a full copy plus a whiteout) and one it
# empties and refills (an opaque directory)
BASE_SCRIPT = """
set -e
mkdir -p srv/www var/old/sub opt/keep
echo page > srv/www/index.html
chown -R 33:33 srv/www
echo o > var/old/sub/f
chown 100:101 var/old/sub
cp bin/busybox bin/su-like
chmod 4755 bin/su-like
cp bin/busybox bin/ping-like
setcap cap_net_raw+ep bin/ping-like
echo k > opt/keep/a
"""
STEP_SCRIPT = (
    "set -e; mkdir -p /var/lib/app; echo data > /var/lib/app/db; "
    "chown -R 42:65534 /var/lib/app; rm /srv/www/index.html; mv /var/old /var/new; "
    "rm -r /opt/keep; mkdir /opt/keep; echo new > /opt/keep/b; "
    "ln -s /var/lib/app /app; id -u > /uid"
)


def _busybox_base(work: Path) -> None:
    tree = busybox_tree(work / "basetree")
    subprocess.run(["sh", "-c", BASE_SCRIPT], cwd=tree, check=True)
    tar_of(tree, work / "base.tar")
    shutil.rmtree(tree)


def _busybox_manifest(work: Path) -> str:
    sh = {"type": "cmd", "copy": False, "path": "/bin/busybox"}
    doc = {"name": "example.com/rootless", "app": {"exec": ["/bin/busybox", "true"],
                                                   "user": "0", "group": "0"},
           STEPS: [{"type": "image", "path": "base.tar"},
                   {**sh, "args": ["sh", "-c", STEP_SCRIPT]},
                   {**sh, "args": ["sh", "-c", "echo offline > /none"], "network": "none"}]}
    (work / "m.json").write_text(json.dumps(doc, indent=2) + "\n")
    return "m.json"


def _build(python: str, work: Path, args: list[str], user: str | None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [python, "-m", "acigen", "-b", *args]
    if user is None:
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=1800)
    else:
        rootless.give_to(work, user)
        done = rootless.as_user(user, argv, work, timeout=1800)
    if check:
        assert done.returncode == 0, f"{user or 'root'}: {done.stdout}{done.stderr}"
    assert not mounts_under([work])
    return done


def _both(area: Path, python: str, prepare, args: list[str]) -> tuple[Path, Path, str]:
    """Build in area/root as root and in area/user as USER; their dirs and
    the rootless build's output."""
    dirs = []
    for name in ("root", "user"):
        work = area / name
        work.mkdir()
        prepare(work)
        dirs.append(work)
    _build(python, dirs[0], args, None)
    out = _build(python, dirs[1], args, USER).stdout
    return dirs[0], dirs[1], out


def _same_files(root_dir: Path, user_dir: Path, names: list[str]) -> None:
    for name in names:
        assert (root_dir / name).read_bytes() == (user_dir / name).read_bytes(), name


def test_bash_example_rootless_is_byte_identical(area: Path, python: str) -> None:
    def prepare(work: Path) -> None:
        shutil.copytree(EXAMPLES / "bash", work, dirs_exist_ok=True)
    root_dir, user_dir, out = _both(area, python, prepare,
                                    ["--oci", "bash.oci.tar", "bash.json"])
    assert "(layers: overlay (userns))" in out
    _same_files(root_dir, user_dir, ["bash.aci", "bash.oci.tar"])
    assert (user_dir / ".acigen" / "owner").read_text() == f"user {_uid(USER)}\n"


def test_busybox_cmd_steps_rootless_are_byte_identical(area: Path, python: str) -> None:
    def prepare(work: Path) -> None:
        _busybox_base(work)
        _busybox_manifest(work)
    root_dir, user_dir, _ = _both(area, python, prepare, ["--oci", "m.oci.tar", "m.json"])
    _same_files(root_dir, user_dir, ["m.aci", "m.oci.tar"])
    with tarfile.open(user_dir / "m.aci") as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
        assert tar.getmember("rootfs/bin/su-like").mode & 0o4000
        # a file capability, stored v3 with the user as its root id on the
        # host, is read inside as the v2 a root build stores
        cap = tar.getmember("rootfs/bin/ping-like").pax_headers["SCHILY.xattr.security.capability"]
        assert cap.encode("latin-1").startswith(b"\x01\x00\x00\x02")
        assert tar.extractfile("rootfs/uid").read() == b"0\n"  # type: ignore[union-attr]
        assert tar.extractfile("rootfs/none").read() == b"offline\n"  # type: ignore[union-attr]
    assert owners["rootfs/srv/www"] == (33, 33)
    assert owners["rootfs/var/new/sub"] == (100, 101)
    assert owners["rootfs/var/lib/app/db"] == (42, 65534)
    assert "rootfs/srv/www/index.html" not in owners
    # the layers hold the user's subordinate ids: verify reads them, clean
    # removes them, from inside the namespace
    verified = rootless.as_user(USER, [python, "-m", "acigen", "verify"], user_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert ": no problems" in verified.stdout
    cleaned = rootless.as_user(USER, [python, "-m", "acigen", "clean"], user_dir)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not list((user_dir / ".acigen" / "layers").iterdir())


def test_extract_step_rootless_is_byte_identical(area: Path, python: str) -> None:
    def prepare(work: Path) -> None:
        _busybox_base(work)
        _busybox_manifest(work)
        doc = json.loads((work / "m.json").read_text())
        doc[STEPS].append({"type": "extract", "binaries": ["/bin/busybox"],
                           "keeps": ["/var/lib/app/**"]})
        (work / "m.json").write_text(json.dumps(doc, indent=2) + "\n")
    root_dir, user_dir, _ = _both(area, python, prepare, ["m.json"])
    _same_files(root_dir, user_dir, ["m.aci"])
    with tarfile.open(user_dir / "m.aci") as tar:
        names = set(tar.getnames())
    assert "rootfs/var/lib/app/db" in names
    assert "rootfs/bin/su-like" not in names  # pruned: the extract step ran


def test_hello_example_python_env_rootless_is_byte_identical(area: Path, python: str) -> None:
    def prepare(work: Path) -> None:
        shutil.copytree(EXAMPLES / "hello", work, dirs_exist_ok=True)
    root_dir, user_dir, _ = _both(area, python, prepare, ["--oci", "hello.oci.tar",
                                                          "hello.json"])
    _same_files(root_dir, user_dir, ["hello.aci", "hello.oci.tar"])


@pytest.mark.slow
def test_debian_apt_install_rootless_is_byte_identical(area: Path, python: str) -> None:
    """apt-get update and install as mapped root: _apt (uid 42) and the
    other system users exist inside.  The step removes apt's and dpkg's
    logs, which hold the time of the run (two root builds differ there too)."""
    script = ("apt-get update && apt-get install -y hello && apt-get clean && "
              "rm -rf /var/lib/apt/lists/* /var/log/dpkg.log /var/log/apt/*.log")

    def prepare(work: Path) -> None:
        shutil.copyfile(debian_minbase_tarball(), work / "base.tar")
        doc = {"name": "example.com/hello", "app": {"exec": ["/usr/bin/hello"],
                                                     "user": "root", "group": "root"},
               STEPS: [{"type": "image", "path": "base.tar", "devices": "skip"},
                       {"type": "setup_chroot", "make_debian_policy_rc": True},
                       {"type": "cmd", "copy": False, "path": "/bin/sh",
                        "args": ["-c", script]}]}
        (work / "m.json").write_text(json.dumps(doc, indent=2) + "\n")
    root_dir, user_dir, out = _both(area, python, prepare, ["--oci", "m.oci.tar", "m.json"])
    assert "8 device nodes skipped (layers: overlay (userns))" in out
    _same_files(root_dir, user_dir, ["m.aci", "m.oci.tar"])
    with tarfile.open(user_dir / "m.aci") as tar:
        assert tar.getmember("rootfs/usr/bin/hello").isfile()
        assert tar.getmember("rootfs/usr/bin/su").mode & 0o4000


@pytest.mark.slow
def test_ansible_step_rootless_is_byte_identical(area: Path, python: str) -> None:
    """The ansible step's playbook (apt, a role, a template) rootless; the
    last step removes what holds the time of the run (apt's and dpkg's
    logs, ldconfig's cache of inode times)."""
    forget_times = ("rm -f /var/log/dpkg.log /var/log/apt/history.log /var/log/apt/term.log "
                    "/var/cache/ldconfig/aux-cache")

    def prepare(work: Path) -> None:
        shutil.copytree(PLAYBOOKS, work / "playbooks")
        shutil.copyfile(debian_minbase_tarball(), work / "base.tar")
        doc = {"name": "example.com/greeting",
               "app": {"exec": ["/usr/bin/hello"], "user": "root", "group": "root"},
               STEPS: [{"type": "image", "path": "base.tar", "devices": "skip"},
                       {"type": "ansible", "playbook": "playbooks/site.yml",
                        "make_debian_policy_rc": True},
                       {"type": "cmd", "copy": False, "path": "/bin/sh",
                        "args": ["-c", f"apt-get clean && {forget_times}"]}]}
        (work / "g.json").write_text(json.dumps(doc, indent=2) + "\n")
    root_dir, user_dir, _ = _both(area, python, prepare, ["g.json"])
    _same_files(root_dir, user_dir, ["g.aci"])
    with tarfile.open(user_dir / "g.aci") as tar:
        greeting = tar.extractfile("rootfs/etc/greeting").read()  # type: ignore[union-attr]
    assert greeting == b"Hello from acigen on Debian 12 (acigen_runc)\n"


# files that hold the time of the run: two root builds differ there too
TIME_FILES = ("var/log/dpkg.log", "var/log/apt/history.log", "var/log/apt/term.log",
              "var/cache/ldconfig/aux-cache")


def _members(aci: Path) -> dict[str, tuple]:
    """Name -> (type, mode, owner, size, mtime, content digest, xattrs)."""
    found = {}
    with tarfile.open(aci) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else m.linkname.encode()  # type: ignore[union-attr]
            found[m.name] = (m.type, m.mode, m.uid, m.gid, m.mtime,
                             hashlib.sha256(data).hexdigest(), sorted(m.pax_headers.items()))
    return found


@pytest.mark.slow
def test_nginx_example_rootless_is_the_root_build(area: Path, python: str) -> None:
    """examples/nginx as it is: the images differ only in the contents of the
    files that hold the time of the run; with a last step removing those,
    byte for byte (.aci, and a squashed .oci.tar: the OCI image's per-step
    layers still hold the times the last step removes)."""
    def prepare(work: Path) -> None:
        shutil.copytree(EXAMPLES / "nginx", work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.tar", ".acigen", "*.aci", "*.id"))
        shutil.copyfile(debian_minbase_tarball(), work / "bookworm-minbase.tar")
    args = ["--oci", "nginx.oci.tar", "nginx.json"]
    root_dir, user_dir, _ = _both(area, python, prepare, args)
    ours, theirs = _members(user_dir / "nginx.aci"), _members(root_dir / "nginx.aci")
    assert ours.keys() == theirs.keys()
    differ = sorted(name for name in ours if ours[name] != theirs[name])
    assert set(differ) <= {f"rootfs/{name}" for name in TIME_FILES}, differ
    for name in differ:  # owners and modes still the same
        assert ours[name][:4] == theirs[name][:4], name
    assert ours["rootfs/usr/sbin/nginx"] == theirs["rootfs/usr/sbin/nginx"]

    forget = {"type": "cmd", "copy": False, "path": "/bin/rm",
              "args": ["-f", *(f"/{name}" for name in TIME_FILES)]}
    for work, user in ((root_dir, None), (user_dir, USER)):
        doc = json.loads((work / "nginx.json").read_text())
        doc[STEPS].append(forget)
        (work / "nginx.json").write_text(json.dumps(doc, indent=2) + "\n")
        _build(python, work, ["--squash", *args], user)
    _same_files(root_dir, user_dir, ["nginx.aci", "nginx.oci.tar"])


def test_copy_layer_mode_rootless_is_byte_identical(area: Path, python: str) -> None:
    def prepare(work: Path) -> None:
        _busybox_base(work)
        _busybox_manifest(work)
    root_dir, user_dir, out = _both(area, python, prepare,
                                    ["--layer-mode", "copy", "m.json"])
    assert "(layers: copy (userns))" in out
    _same_files(root_dir, user_dir, ["m.aci"])


def test_single_id_mode_builds_what_needs_no_other_ids(area: Path, python: str) -> None:
    shutil.copytree(EXAMPLES / "bash", area / "root")
    shutil.copytree(EXAMPLES / "bash", area / "user")
    _build(python, area / "root", ["bash.json"], None)
    out = _build(python, area / "user", ["bash.json"], SINGLE_USER).stdout
    assert "(layers: overlay (single))" in out
    _same_files(area / "root", area / "user", ["bash.aci"])


def test_single_id_mode_names_the_missing_range(area: Path, python: str) -> None:
    _busybox_base(area)
    _busybox_manifest(area)
    done = _build(python, area, ["m.json"], SINGLE_USER, check=False)
    assert done.returncode == 1
    [line] = [x for x in done.stdout.splitlines() if "error:" in x]
    assert "uid 33" in line or "uid 100" in line, line
    assert "/etc/subuid" in line
    assert f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {SINGLE_USER}" \
        in line


@pytest.mark.parametrize("first", ["root", "user"])
def test_a_build_directory_is_not_shared_by_root_and_a_user(
        area: Path, python: str, first: str) -> None:
    shutil.copytree(EXAMPLES / "bash", area, dirs_exist_ok=True)
    order = [None, USER] if first == "root" else [USER, None]
    _build(python, area, ["bash.json"], order[0])
    (area / "bash.json").write_text((area / "bash.json").read_text().replace("1.0.0", "1.0.1"))
    done = _build(python, area, ["bash.json"], order[1], check=False)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    owner = "root builds" if first == "root" else f"rootless builds by uid {_uid(USER)}"
    assert f"this build directory belongs to {owner}" in lines[0]


def _uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid


def test_sign_rootless_with_the_users_own_key(area: Path, python: str) -> None:
    """--sign as the user, with a key the user made in their own keyring."""
    shutil.copytree(EXAMPLES / "bash", area, dirs_exist_ok=True)
    gnupg = area / "gnupg"
    gnupg.mkdir(mode=0o700)
    rootless.give_to(area, USER)
    key = "rootless@acigen.test"
    made = rootless.as_user(USER, ["gpg", "--batch", "--homedir", str(gnupg), "--passphrase",
                                   "", "--quick-gen-key", f"acigen test <{key}>", "ed25519",
                                   "sign", "never"], area)
    try:
        assert made.returncode == 0, made.stderr
        _build(python, area, ["--sign", key, "--gnupg-home", str(gnupg), "bash.json"], USER)
        verified = rootless.as_user(USER, ["gpg", "--batch", "--homedir", str(gnupg),
                                           "--verify", "bash.aci.asc", "bash.aci"], area)
        assert verified.returncode == 0, verified.stderr
        assert "Good signature" in verified.stderr
    finally:
        rootless.as_user(USER, ["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
                         area)


def test_a_user_still_generates_for_sudo_ninja(area: Path, python: str) -> None:
    """`acigen m.json && sudo ninja`: the user generates, root builds, and
    the user may generate again; only building rootless there is refused."""
    shutil.copytree(EXAMPLES / "bash", area, dirs_exist_ok=True)
    rootless.give_to(area, USER)
    for _ in range(2):
        made = rootless.as_user(USER, [python, "-m", "acigen", "bash.json"], area)
        assert made.returncode == 0, made.stderr
        ninja = subprocess.run([python, "-c", "import ninja, os, sys; "
                                "os.execv(os.path.join(ninja.BIN_DIR, 'ninja'), ['ninja'])"],
                               cwd=area, capture_output=True, text=True)
        assert ninja.returncode == 0, ninja.stdout + ninja.stderr
    assert (area / ".acigen" / "owner").read_text() == "root\n"
    assert (area / "bash.aci").is_file()


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = [x for x in (done.stdout + done.stderr).splitlines() if "error:" in x]
    return line


def test_single_id_mode_refuses_cmd_steps_with_the_hint(area: Path, python: str) -> None:
    tree = busybox_tree(area / "tree")
    tar_of(tree, area / "base.tar")
    shutil.rmtree(tree)
    _busybox_manifest(area)
    line = _one_error_line(_build(python, area, ["m.json"], SINGLE_USER, check=False))
    assert "cmd and ansible steps need ids other than 0" in line
    assert "/etc/subuid" in line and "usermod --add-subuids" in line


def test_owners_beyond_the_range_device_nodes_and_root_xattrs_fail_with_one_line(
        area: Path, python: str) -> None:
    for name, setup, step, expected in (
            ("beyond", "echo x > far && chown 70000:70000 far", {},
             "member './far': uid 70000 gid 70000 lies beyond this user's subordinate ids"),
            ("device", "mknod dev/null c 1 3", {"devices": True},
             "member './dev/null': a rootless build cannot make device nodes"),
            ("xattr", "echo x > t && setfattr -n trusted.mark -v 1 t", {},
             "member './t': a rootless build cannot set its extended attribute "
             "'trusted.mark'")):
        work = area / name
        tree = busybox_tree(work / "tree")
        subprocess.run(["sh", "-c", setup], cwd=tree, check=True)
        tar_of(tree, work / "base.tar")
        shutil.rmtree(tree)
        doc = {"name": "example.com/x", "app": {"exec": ["/bin/busybox"], "user": "0",
                                                "group": "0"},
               STEPS: [{"type": "image", "path": "base.tar", **step}]}
        (work / "m.json").write_text(json.dumps(doc))
        line = _one_error_line(_build(python, work, ["m.json"], USER, check=False))
        assert expected in line, line


def test_killing_a_rootless_ninja_leaves_no_process_and_no_runtime_state(
        area: Path, python: str) -> None:
    """SIGKILL to ninja mid-step: the helper notices, its container is killed
    and deleted (inside the namespace); the next build finishes."""
    marker = f"sleep 600; echo {area.name} > /ran"  # sh waits for sleep: it keeps this line
    tree = busybox_tree(area / "tree")
    tar_of(tree, area / "base.tar")
    shutil.rmtree(tree)
    doc = {"name": "example.com/slow", "app": {"exec": ["/bin/busybox"], "user": "0",
                                               "group": "0"},
           STEPS: [{"type": "image", "path": "base.tar"},
                   {"type": "cmd", "copy": False, "path": "/bin/sh",
                    "args": ["-c", marker]}]}
    (area / "m.json").write_text(json.dumps(doc))
    rootless.give_to(area, USER)
    made = rootless.as_user(USER, [python, "-m", "acigen", "m.json"], area)
    assert made.returncode == 0, made.stderr
    ninja = str(area.parent / "venv" / "bin" / "ninja")
    build = subprocess.Popen(["setpriv", f"--reuid={_uid(USER)}", f"--regid={_uid(USER)}",
                              "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin:/usr/sbin",
                              ninja], cwd=area, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_with(marker), "the step never started"
    finally:
        build.kill()
        build.wait()
    deadline = time.monotonic() + 30
    while (pids_with(marker) or processes_under([area])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_with(marker)
    assert not processes_under([area])
    assert not mounts_under([area])
    state = list((area / ".acigen" / "layers").glob("*/chroot/**/runtime-state/*/*"))
    assert state == []  # runc's record of the container, deleted with it
    doc[STEPS][1]["args"] = ["-c", "echo ok > /ran"]
    (area / "m.json").write_text(json.dumps(doc))
    rootless.give_to(area, USER)
    _build(python, area, ["m.json"], USER)  # the next build finishes
