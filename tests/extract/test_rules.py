"""The extract rules on a small hand-built root (static busybox plus files):
what survives, what goes, what stays exactly as it was."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.extract.support import OLD, paths, run_extract, small_image, snapshot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return small_image(tmp_path / "root")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


MOUNT_POINTS = {"/dev", "/proc", "/run", "/sys", "/tmp"}
BUSYBOX = {"/", "/bin", "/bin/busybox"}


def test_closure_keeps_and_mount_points_survive_everything_else_goes(root: Path) -> None:
    # overlapping keeps: a directory, a file and a directory inside it, the same file twice
    ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc/app",
                   "--keep", "/etc/app/main.conf", "--keep", "/etc/app/conf.d",
                   "--keep", "/etc/app/main.conf", "--keep", "/var/lib/app/state.db",
                   "--keep", "/usr/bin/awk", "--keep", "/bin/busybox"))
    app_tree = {"/etc", "/etc/app", "/etc/app/main.conf", "/etc/app/conf.d",
                "/etc/app/conf.d/a.conf", "/etc/app/conf.d/b.conf",
                "/etc/app/conf.d/.hidden.conf"}
    # a kept symlink keeps its whole chain and what it ends at
    awk = {"/usr", "/usr/bin", "/usr/bin/awk", "/etc/alternatives", "/etc/alternatives/awk"}
    state = {"/var", "/var/lib", "/var/lib/app", "/var/lib/app/state.db"}
    assert paths(root) == BUSYBOX | MOUNT_POINTS | app_tree | awk | state
    # and what is left runs: the program and the symlinked applet
    out = subprocess.run(["chroot", str(root), "/usr/bin/awk", "BEGIN { print 6 * 7 }"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "42\n"


def test_a_binary_inside_a_kept_directory(root: Path) -> None:
    ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/bin", "--keep", "/bin/sh"))
    assert {"/bin/sh", "/bin/ls", "/bin/busybox"} <= paths(root)
    assert "/etc" not in paths(root)


def test_what_survives_keeps_mode_owner_times_and_xattrs(root: Path) -> None:
    before = snapshot(root)
    ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/var/lib/app/state.db",
                   "--keep", "/etc/app/conf.d/a.conf"))
    after = snapshot(root)
    assert after == {path: before[path] for path in after}
    # the directories that lost entries are among them, with their odd modes and owners
    assert {"/", "/etc", "/var/lib/app", "/tmp", "/dev"} <= set(after)
    assert after["/var/lib/app"][:4] == (0o42750, 1234, 5678, OLD * 10**9)
    assert after["/tmp"][0] == 0o41777


def test_mount_points_stay_empty_and_are_never_made(root: Path) -> None:
    os.rmdir(root / "sys")
    ok(run_extract(root, "--binary", "/bin/busybox"))
    assert paths(root) == BUSYBOX | MOUNT_POINTS - {"/sys"}


def test_empty_directories_go(root: Path) -> None:
    ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/srv/data/file"))
    left = paths(root)
    assert {"/srv", "/srv/data", "/srv/data/file"} <= left
    assert not {"/var", "/var/empty", "/var/lib/deep", "/usr/share/doc/x"} & left


def test_a_missing_keep_is_an_error_and_changes_nothing(root: Path) -> None:
    before = snapshot(root)
    result = run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc/app",
                         "--keep", "/nope", "--keep", "/etc/app/nothing.conf")
    assert result.returncode == 1
    first, *rest = result.stderr.splitlines()
    assert first == ("acigen-extract: error: keeps not in the image: /nope, "
                     "/etc/app/nothing.conf")
    assert all(line.startswith("hint: ") for line in rest)
    assert snapshot(root) == before


def test_a_missing_binary_is_an_error_and_changes_nothing(root: Path) -> None:
    before = snapshot(root)
    result = run_extract(root, "--binary", "/bin/nginx")
    assert result.returncode == 1
    assert result.stderr.startswith("acigen-extract: error: binary /bin/nginx: not in the image")
    result = run_extract(root, "--binary", "/etc")
    assert "binary /etc: a directory" in result.stderr
    assert snapshot(root) == before


def test_globs(root: Path) -> None:
    out = ok(run_extract(root, "--binary", "/bin/busybox",
                         "--keep", "/etc/app/conf.d/*.conf",   # * matches a leading dot too
                         "--keep", "/usr/share/**/*.txt",      # ** spans directories
                         "--keep", "/srv/**/file",             # ... one
                         "--keep", "/data/*",                  # through a directory symlink
                         "--keep", "/nothing/*"))              # a warning, not an error
    left = paths(root)
    assert {"/etc/app/conf.d/a.conf", "/etc/app/conf.d/b.conf",
            "/etc/app/conf.d/.hidden.conf", "/usr/share/doc/x/README.txt",
            "/usr/share/doc/y/z/NOTES.txt", "/srv/data/file", "/data"} <= left
    assert not {"/etc/app/main.conf", "/usr/share/doc/y/z/pic.png"} & left
    assert "warning: keep /nothing/*: the pattern matches nothing" in out


def test_globstar_matches_zero_directories_too(root: Path) -> None:
    ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/srv/data/**/file",
                   "--keep", "/etc/**"))
    left = paths(root)
    assert "/srv/data/file" in left
    assert {"/etc/passwd", "/etc/app/conf.d/.hidden.conf"} <= left  # /etc/** is all of /etc


def test_a_bare_binary_name_is_found_through_path(root: Path) -> None:
    out = ok(run_extract(root, "--binary", "busybox", "--path", "/opt/bin:/usr/bin:/bin"))
    assert "for /bin/busybox" in out
    result = run_extract(root, "--binary", "nginx", "--path", "/usr/sbin:/bin")
    assert result.returncode == 1
    assert "binary 'nginx': not found in the image's PATH (/usr/sbin:/bin)" in result.stderr


def test_a_user_name_without_passwd_is_a_warning_with_the_fix(root: Path) -> None:
    out = ok(run_extract(root, "--binary", "/bin/busybox", "--user", "www-data",
                         "--group", "33"))
    assert ("warning: app.user is 'www-data', a name, but /etc/passwd is not kept: the "
            "executor cannot resolve it; keep /etc/passwd or set app.user to '33'") in out
    assert "app.group" not in out


def test_a_user_name_with_passwd_kept_is_fine(root: Path) -> None:
    out = ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc/passwd",
                         "--user", "www-data"))
    assert "warning" not in out


def test_the_host_root_is_refused() -> None:
    result = run_extract(Path("/"), "--binary", "/bin/busybox", "--dry-run")
    assert result.returncode == 1
    assert "refusing to prune the host's own root directory" in result.stderr


def test_dry_run_changes_nothing_and_counts_the_same(root: Path, tmp_path: Path) -> None:
    before = snapshot(root)
    dry = ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc", "--dry-run"))
    assert snapshot(root) == before
    real = ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc"))
    assert dry == "dry run: would have " + real


def test_symlinks_inside_a_kept_directory_keep_their_targets(root: Path) -> None:
    (root / "etc/app/data").symlink_to("/srv/data")          # a directory elsewhere
    (root / "etc/app/shell").symlink_to("../../bin/sh")      # a chain: sh -> busybox
    (root / "etc/app/gone").symlink_to("/no/such/file")      # dangling: kept as it is
    out = ok(run_extract(root, "--binary", "/bin/busybox", "--keep", "/etc/app"))
    assert "warning" not in out  # only a keep that names a dangling link is worth one
    left = paths(root)
    assert {"/etc/app/data", "/srv/data/file", "/etc/app/shell", "/bin/sh",
            "/etc/app/gone"} <= left
    assert "/bin/ls" not in left
