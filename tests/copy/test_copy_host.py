"""copy_host_files: host programs with their closure, files and trees, and
never a write outside the image however its symlinks point."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from acigen.helpers import elf


def copy_host(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acigen.helpers.copy_host", "--root",
                           str(root), *args], capture_output=True, text=True)


def snapshot(top: Path) -> dict[str, str]:
    """Every entry under TOP with its type and content digest."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                link = os.readlink(path) if path.is_symlink() else ""
                out[str(path)] = f"{stat.S_IFMT(st.st_mode)}:{link}"
    return out


def test_binaries_come_with_their_closure_and_load_in_the_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = copy_host(root, "--binary", "/bin/bash")
    assert result.returncode == 0, result.stderr
    found = elf.closure(str(root), ["/bin/bash"])
    assert not found.problems
    assert (root / "bin").is_symlink()  # the usr-merge link, as on the host
    assert not (root / "etc").exists()  # the host's configuration stays home
    out = subprocess.run(["chroot", str(root), "/bin/bash", "-c", "echo $((6 * 7))"],
                         capture_output=True, text=True)
    assert out.stdout == "42\n", out.stderr


@pytest.mark.parametrize("trap", ["absolute", "relative", "dangling"])
def test_image_symlinks_never_lead_a_write_out(tmp_path: Path, trap: str) -> None:
    sentinel = tmp_path / "host"
    (sentinel / "usr" / "lib").mkdir(parents=True)
    (sentinel / "usr" / "lib" / "keep").write_text("host file\n")
    root = tmp_path / "root"
    root.mkdir()
    target = {"absolute": str(sentinel / "usr"),
              "relative": "../" * 12 + str(sentinel / "usr").lstrip("/"),
              "dangling": str(sentinel / "nothing")}[trap]
    (root / "usr").symlink_to(target)
    (root / "etc").symlink_to("/etc")
    before = snapshot(sentinel)
    host_etc = snapshot(Path("/etc/ssl")) if Path("/etc/ssl").exists() else {}

    conf = tmp_path / "app.conf"
    conf.write_text("x = 1\n")
    result = copy_host(root, "--binary", "/bin/bash", "--file", str(conf), "/etc/ssl/app.conf",
                       "--file", str(conf), "/usr/lib/app.conf")

    assert snapshot(sentinel) == before, result.stderr
    assert (snapshot(Path("/etc/ssl")) if Path("/etc/ssl").exists() else {}) == host_etc
    assert not (Path("/etc/ssl/app.conf")).exists()
    if result.returncode == 0:
        # the links were followed inside the image: the files are in it
        inside = [p for p in root.rglob("app.conf")]
        assert inside, "copied files must land inside the image"
        assert all(str(p).startswith(str(root)) for p in inside)
    else:
        assert result.stderr.startswith("acigen-copy-host: error:"), result.stderr


def test_a_directory_keeps_modes_owners_symlinks_and_hard_links(tmp_path: Path) -> None:
    src = tmp_path / "conf"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("a\n")
    os.chown(src / "a", 1234, 2345)
    os.chmod(src / "a", 0o4755)  # after chown, which clears setuid
    os.link(src / "a", src / "sub" / "hard")
    (src / "link").symlink_to("sub/hard")
    os.chmod(src / "sub", 0o2750)
    root = tmp_path / "root"
    root.mkdir()
    result = copy_host(root, "--file", str(src), "/srv/conf")
    assert result.returncode == 0, result.stderr
    dst = root / "srv" / "conf"
    st = (dst / "a").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1234, 2345)
    assert st.st_ino == (dst / "sub" / "hard").lstat().st_ino
    assert os.readlink(dst / "link") == "sub/hard"
    assert stat.S_IMODE((dst / "sub").lstat().st_mode) == 0o2750


def test_a_missing_host_file_is_one_clear_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = copy_host(root, "--file", str(tmp_path / "nope"), "/x")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == \
        f"acigen-copy-host: error: {tmp_path}/nope: no such file on the host"
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(("dst", "why"), [
    ("../../x", "an image path may not hold '..'"),
    ("a/../../x", "an image path may not hold '..'"),
    ("/", "the image path names no entry in the image")])
def test_a_bad_destination_by_hand_is_one_clear_line(tmp_path: Path, dst: str, why: str) -> None:
    root = tmp_path / "deep" / "root"
    root.mkdir(parents=True)
    host = tmp_path / "host-file"
    host.write_text("x")
    for src in (host, tmp_path / "deep"):  # a file, and a directory
        result = copy_host(root, "--file", str(src), dst)
        assert (result.returncode, result.stderr) == (
            1, f"acigen-copy-host: error: {dst!r}: {why}\n")
    assert list(root.iterdir()) == [] and sorted(os.listdir(tmp_path)) == ["deep", "host-file"]
