"""`acigen run`: ACIs run through runc as an App Container executor would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from acigen.helpers.chroot_run.container import STATE_ROOT, STOP_GRACE
from tests.oci.imaging import helper, manifest
from tests.support.leaks import mounts_under
from tests.support.net import free_port, http_get
from tests.support.rootfs import busybox_tree

STATE = Path(STATE_ROOT) / "runc"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = busybox_tree(tmp_path_factory.mktemp("run") / "tree")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "www:x:1234:2345:web:/home/www:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nweb:x:2345:\n")
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("hello from the image\n")
    return root


def write_manifest(work: Path, name: str = "app", **app: object) -> Path:
    """manifest()'s, its app section updated with APP, as WORK/NAME.json."""
    doc = manifest()
    doc["app"].update(app)
    (work / f"{name}.json").write_text(json.dumps(doc))
    return work / f"{name}.json"


def make_aci(work: Path, tree: Path, name: str = "app", **app: object) -> Path:
    """An ACI of TREE whose app section is manifest()'s updated with APP."""
    out = work / f"{name}.aci"
    helper("pack", "--manifest", str(write_manifest(work, name, **app)), "--rootfs", str(tree),
           "-o", str(out))
    return out


def run(aci: Path, *args: str, cache: Path, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run([sys.executable, "-m", "acigen.helpers.run", str(aci), *args],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def containers() -> list[str]:
    return sorted(p.name for p in STATE.iterdir()) if STATE.is_dir() else []


def test_hello_world_prints_and_exits_0(tmp_path: Path, tree: Path, cache: Path,
                                        no_mount_leaks) -> None:
    aci = make_aci(tmp_path, tree)
    result = run(aci, cache=cache)
    assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr
    # ARGS are appended to exec, as `docker run` appends them to an Entrypoint
    result = run(aci, "--", "world", cache=cache)
    assert (result.returncode, result.stdout) == (0, "hello world\n"), result.stderr
    assert not os.listdir(cache / "acigen" / "run" / "scratch")


def test_failing_app_exit_status_is_returned(tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree, exec=["/bin/sh", "-c", "echo failing >&2; exit 3"])
    result = run(aci, cache=cache)
    assert result.returncode == 3
    assert "failing" in result.stderr


def test_user_and_group_names_resolve_in_the_image(tmp_path: Path, tree: Path,
                                                   cache: Path) -> None:
    aci = make_aci(tmp_path, tree, user="www", group="web", supplementaryGIDs=[3000],
                   exec=["/bin/sh", "-c", 'id; echo "$HOME $AC_APP_NAME"; pwd'],
                   workingDirectory="/www")
    result = run(aci, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "uid=1234(www) gid=2345(web) groups=3000", "/home/www hello", "/www"]


def test_unknown_user_is_a_clear_error(tmp_path: Path, tree: Path, cache: Path) -> None:
    # acigen-pack refuses such an image (tests/pack/test_errors.py); another tool's ACI
    made = helper("pack", "--manifest", str(write_manifest(tmp_path, user="nosuchuser")),
                  "--rootfs", str(tree), "-o", str(tmp_path / "app.aci"), check=False)
    assert made.returncode == 1, made.stderr
    aci = tmp_path / "other.aci"
    with tarfile.open(aci, "w:gz") as out:
        out.add(tmp_path / "app.json", "manifest")
        out.add(tree, "rootfs")
    result = run(aci, cache=cache)
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == ("acigen run: error: user 'nosuchuser' is "
                                             "neither in the image's /etc/passwd nor a number")


def test_root_is_0_in_an_image_without_passwd(tmp_path: Path, cache: Path) -> None:
    """The original's bash image: no /etc at all, user and group "root"."""
    bare = busybox_tree(tmp_path / "bare")
    shutil.rmtree(bare / "etc")
    aci = make_aci(tmp_path, bare, user="root", group="root", exec=["/bin/id"])
    result = run(aci, cache=cache)
    assert (result.returncode, result.stdout) == (0, "uid=0 gid=0\n"), result.stderr


def test_volumes_are_mounted_at_the_mount_points(tmp_path: Path, tree: Path,
                                                 cache: Path) -> None:
    aci = make_aci(tmp_path, tree, mountPoints=[
        {"name": "data", "path": "/data"}, {"name": "conf", "path": "/conf", "readOnly": True}],
        exec=["/bin/sh", "-c", "cat /conf/setting; echo written > /data/out; "
                               "echo x > /conf/new || echo read-only"])
    data, conf = tmp_path / "data", tmp_path / "conf"
    data.mkdir()
    conf.mkdir()
    (conf / "setting").write_text("from the host\n")
    result = run(aci, "--volume", f"data:{data}", "--volume", f"conf:{conf}", cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "from the host"
    assert result.stdout.splitlines()[-1] == "read-only"
    assert (data / "out").read_text() == "written\n"
    assert not (conf / "new").exists()
    bad = run(aci, "--volume", f"nosuch:{data}", cache=cache)
    assert bad.returncode == 125
    assert "the image has no mount point of that name (it has: conf, data)" in bad.stderr


def test_the_cached_root_is_never_changed(tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree, exec=["/bin/sh", "-c"])
    first = run(aci, "--", "rm /www/index.html && echo new > /etc/new && echo done", cache=cache)
    assert (first.returncode, first.stdout) == (0, "done\n"), first.stderr
    second = run(aci, "--", "cat /www/index.html; ls /etc/new 2>&1 || true", cache=cache)
    assert second.stdout.splitlines()[0] == "hello from the image"
    assert "No such file" in second.stdout
    [entry] = [p for p in (cache / "acigen" / "run").iterdir() if p.is_dir()
               and p.name.startswith("sha512-")]
    assert (entry / "rootfs" / "www" / "index.html").exists()
    assert not (entry / "rootfs" / "etc" / "new").exists()


def test_a_changed_image_is_unpacked_again(tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree, exec=["/bin/cat", "/www/index.html"])
    assert run(aci, cache=cache).stdout == "hello from the image\n"
    changed = tmp_path / "changed"
    shutil.copytree(tree, changed, symlinks=True)
    (changed / "www" / "index.html").write_text("changed\n")
    aci = make_aci(tmp_path, changed, exec=["/bin/cat", "/www/index.html"])
    assert run(aci, cache=cache).stdout == "changed\n"
    assert len(list((cache / "acigen" / "run").glob("sha512-*[0-9a-f]"))) == 2


def serve(aci: Path, cache: Path) -> subprocess.Popen[str]:
    """`acigen run --net host ACI` in the background (a server)."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.Popen([sys.executable, "-m", "acigen.helpers.run", str(aci), "--net", "host"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def test_server_with_host_network_serves_then_ctrl_c_cleans_up(
        tmp_path: Path, tree: Path, cache: Path, no_mount_leaks) -> None:
    port = free_port()
    aci = make_aci(tmp_path, tree, exec=["/bin/httpd", "-f", "-p", f"127.0.0.1:{port}",
                                         "-h", "/www"])
    before = containers()
    proc = serve(aci, cache)
    try:
        status, body = http_get(f"http://127.0.0.1:{port}/index.html", timeout=300,
                                server=proc)
        assert (status, body) == (200, b"hello from the image\n")
        assert len(containers()) == len(before) + 1
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert containers() == before
    assert not os.listdir(cache / "acigen" / "run" / "scratch")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    assert mounts_under([tmp_path, cache]) == set()


@pytest.mark.parametrize("app", [
    ["/bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"],  # PID 1, no TERM handler
    ["/bin/sh", "-c", "trap 'exit 7' TERM; httpd -p 127.0.0.1:{port} -h /www; "
     "while :; do sleep 0.1; done"],  # traps TERM: it is given the chance
], ids=["ignores-term", "traps-term"])
def test_sigterm_stops_the_app_without_the_grace_period_and_exits_143(
        app: list[str], tmp_path: Path, tree: Path, cache: Path, no_mount_leaks) -> None:
    port = free_port()
    aci = make_aci(tmp_path, tree, exec=[arg.format(port=port) for arg in app])
    before = containers()
    proc = serve(aci, cache)
    try:
        assert http_get(f"http://127.0.0.1:{port}/index.html", timeout=300,
                        server=proc)[0] == 200
        started = time.monotonic()
        proc.terminate()  # a plain `kill PID`
        _out, err = proc.communicate(timeout=300)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (143, "acigen run: stopped by SIGTERM\n")
    # TERM to a PID 1 without a handler is dropped by the kernel: waiting the
    # grace period for it would only delay the KILL
    assert took < STOP_GRACE, took
    assert containers() == before


def test_default_network_is_private_with_loopback_up(tmp_path: Path, tree: Path,
                                                      cache: Path) -> None:
    aci = make_aci(tmp_path, tree, exec=["/bin/sh", "-c", (
        "httpd -p 127.0.0.1:8080 -h /www && wget -qO- http://127.0.0.1:8080/index.html; "
        "ls /sys/class/net")])
    result = run(aci, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello from the image", "lo"]


def cgroup_memory_limit() -> str:
    return ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
            "cat /sys/fs/cgroup/memory.max")


def test_isolators_are_enforced_or_reported(tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree, isolators=[
        {"name": "resource/memory", "value": {"limit": "64Mi"}},
        {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_CHOWN"]}},
        {"name": "os/linux/no-new-privileges", "value": True},
        {"name": "resource/network-bandwidth", "value": {"limit": "1G"}},
    ], exec=["/bin/sh", "-c", cgroup_memory_limit() + "; grep NoNewPrivs /proc/self/status;"
             "touch /tmp/f; chown 1 /tmp/f 2>/dev/null && echo chowned || echo no-chown"])
    result = run(aci, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["67108864", "NoNewPrivs:", "1", "no-chown"]
    assert "isolator resource/network-bandwidth is not supported here; ignored" in result.stderr


def test_not_an_image_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    junk = tmp_path / "junk.aci"
    junk.write_bytes(b"not an image at all" * 100)
    result = run(junk, cache=cache)
    assert result.returncode == 125
    assert result.stderr.splitlines() == [
        f"acigen run: error: {junk}: not a tar archive, nor gzip, bzip2, xz or zstd compressed"]
    result = run(tmp_path / "missing.aci", cache=cache)
    assert (result.returncode, result.stderr.strip()) == (
        125, f"acigen run: error: {tmp_path / 'missing.aci'}: no such file")


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_both_runtimes(runtime: str, tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree)
    result = run(aci, "--runtime", runtime, "--", "from", runtime, cache=cache)
    if runtime == "crun" and "cgroups in hybrid mode not supported" in result.stderr:
        pytest.skip("crun cannot run containers on this host's hybrid cgroup hierarchy")
    assert (result.returncode, result.stdout) == (0, f"hello from {runtime}\n"), result.stderr


def test_an_image_rewritten_in_place_is_read_again(tmp_path: Path, tree: Path,
                                                   cache: Path) -> None:
    """Same path, inode, size and mtime: only the ctime tells the bytes changed."""
    def aci_saying(text: str, name: str) -> Path:
        changed = tmp_path / f"tree-{name}"
        shutil.copytree(tree, changed, symlinks=True)
        (changed / "www" / "index.html").write_text(text)
        doc = manifest(exec_=["/bin/cat", "/www/index.html"])
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        out = tmp_path / f"{name}.aci"
        helper("pack", "--manifest", str(tmp_path / f"{name}.json"), "--rootfs", str(changed),
               "-o", str(out), "-C", "none", "--source-date-epoch", "0")
        return out
    first, second = aci_saying("AAAA\n", "a"), aci_saying("BBBB\n", "b")
    assert first.stat().st_size == second.stat().st_size
    assert run(first, cache=cache).stdout == "AAAA\n"
    assert run(first, cache=cache).stdout == "AAAA\n"  # remembered, not read again
    before = first.stat()
    with open(first, "r+b") as out:
        out.write(second.read_bytes())
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert run(first, cache=cache).stdout == "BBBB\n"


def test_a_missing_program_is_our_error_not_the_apps(tmp_path: Path, tree: Path,
                                                     cache: Path) -> None:
    aci = make_aci(tmp_path, tree, exec=["no-such-program", "x"])
    result = run(aci, cache=cache)
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == \
        "acigen run: error: no-such-program: no such executable in the image"
    # found through PATH, like an appc executor would
    ok = run(aci, "--exec", "echo", "--", "x", cache=cache)
    assert (ok.returncode, ok.stdout) == (0, "x\n"), ok.stderr


def cap_eff() -> list[str]:
    return ["/bin/sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs x /tmp 2>&1 "
            "&& echo mounted || echo no-mount"]


def test_an_image_cannot_grant_itself_capabilities(tmp_path: Path, tree: Path,
                                                   cache: Path) -> None:
    # CAP_SYS_ADMIN in the image's own retain set: refused, and said
    aci = make_aci(tmp_path, tree, isolators=[
        {"name": "os/linux/capabilities-retain-set",
         "value": {"set": ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_SETUID"]}}], exec=cap_eff())
    result = run(aci, cache=cache)
    assert result.returncode == 0, result.stderr
    # only CHOWN (bit 0) and SETUID (bit 7): the retain set narrowed the default set
    assert result.stdout.split()[:2] == ["CapEff:", f"{(1 << 0) | (1 << 7):016x}"]
    assert result.stdout.split()[-1] == "no-mount"
    assert ("acigen run: warning: the image asks to keep CAP_SYS_ADMIN, which only "
            "--cap-add CAP_SYS_ADMIN grants; not granted") in result.stderr.splitlines()


def test_cap_add_widens_with_a_warning(tmp_path: Path, tree: Path, cache: Path) -> None:
    aci = make_aci(tmp_path, tree, isolators=[
        {"name": "os/linux/capabilities-retain-set",
         "value": {"set": ["CAP_SYS_ADMIN", "CAP_CHOWN"]}}], exec=cap_eff())
    result = run(aci, "--cap-add", "sys_admin", cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["CapEff:", f"{(1 << 0) | (1 << 21):016x}"]
    assert result.stdout.split()[-1] == "mounted"
    assert result.stderr.splitlines() == [
        "acigen run: warning: --cap-add sys_admin: the app holds more than the containers "
        "default capabilities, and can do more to the host"]


def test_the_default_set_is_the_containers_one(tmp_path: Path, tree: Path,
                                               cache: Path) -> None:
    from acigen.helpers.chroot_run.confinement import DEFAULT_CAPABILITIES
    bits = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4,
            "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
            "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_CHROOT": 18, "CAP_SETFCAP": 31}
    assert set(bits) == set(DEFAULT_CAPABILITIES)
    result = run(make_aci(tmp_path, tree, exec=cap_eff()), cache=cache)
    assert result.stdout.split()[:2] == ["CapEff:", f"{sum(1 << b for b in bits.values()):016x}"]


def test_unpacked_images_are_roots_alone(tmp_path: Path, tree: Path, cache: Path) -> None:
    (cache / "acigen" / "run").mkdir(parents=True, mode=0o755)  # as an older acigen left it
    result = run(make_aci(tmp_path, tree), cache=cache)
    assert result.returncode == 0, result.stderr
    assert (cache / "acigen" / "run").stat().st_mode & 0o777 == 0o700
