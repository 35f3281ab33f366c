"""acigen-extract-deps: output format, exit codes, options."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from acigen.helpers.extract_deps.__main__ import main
from tests.elf.conftest import DEBIAN_BASE

MULTI = "/usr/lib/x86_64-linux-gnu"


@pytest.fixture
def app(debian):
    debian.exe("/usr/bin/app", needed=["libfoo.so.1", "libc.so.6"], runpath="/opt/foo")
    debian.lib("/opt/foo/libfoo.so.1", needed=["libc.so.6"])
    return debian


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_closure_sorted_one_per_line(app, capsys):
    code, out, err = cli(capsys, "--root", str(app.root), "--rules=", "/usr/bin/app")
    assert (code, err) == (0, "")
    assert out == "".join(f"{p}\n" for p in sorted(DEBIAN_BASE | {"/usr/bin/app",
                                                                   "/opt/foo/libfoo.so.1"}))


def test_unresolved_is_one_error_line_each_and_exit_1(app, capsys):
    (app.root / "opt/foo/libfoo.so.1").unlink()
    app.exe("/usr/bin/other", needed=["libbar.so.2", "libc.so.6"])
    code, out, err = cli(capsys, "--root", str(app.root), "/usr/bin/app", "/usr/bin/other")
    assert (code, out) == (1, "")
    searched = ("/etc/ld.so.cache (absent), /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, "
                "/lib, /usr/lib")
    assert err == (
        "acigen-extract-deps: error: libfoo.so.1 needed by /usr/bin/app: not found "
        f"(searched: /opt/foo, {searched})\n"
        "acigen-extract-deps: error: libbar.so.2 needed by /usr/bin/other: not found "
        f"(searched: {searched})\n")


def test_allow_unresolved(app, capsys):
    (app.root / "opt/foo/libfoo.so.1").unlink()
    code, out, err = cli(capsys, "--root", str(app.root), "--allow-unresolved", "libfoo.so.1",
                         "--rules", "", "/usr/bin/app")
    assert (code, err) == (0, "")
    assert "/usr/bin/app\n" in out
    code, _, err = cli(capsys, "--root", str(app.root), "-v", "--allow-unresolved",
                       "libfoo.so.1", "/usr/bin/app")
    assert code == 0
    assert "acigen-extract-deps: warning: libfoo.so.1 needed by /usr/bin/app: not found" in err


def test_json_is_who_needs_what(app, capsys):
    code, out, _ = cli(capsys, "--root", str(app.root), "--json", "--rules=", "/usr/bin/app")
    data = json.loads(out)
    assert code == 0
    assert sorted(data) == ["files", "needs", "problems", "warnings"]
    assert {"requester": "/usr/bin/app", "name": "libfoo.so.1",
            "provider": "/opt/foo/libfoo.so.1", "how": "runpath"} in data["needs"]
    assert data["files"] == sorted(data["files"])


def test_json_still_printed_on_problems(app, capsys):
    (app.root / "opt/foo/libfoo.so.1").unlink()
    code, out, err = cli(capsys, "--root", str(app.root), "--json", "/usr/bin/app")
    assert code == 1
    data = json.loads(out)
    assert data["problems"][0].startswith("libfoo.so.1 needed by /usr/bin/app")
    assert {"requester": "/usr/bin/app", "name": "libfoo.so.1", "provider": None,
            "how": "not-found"} in data["needs"]
    assert err.startswith("acigen-extract-deps: error: libfoo.so.1")


def test_target_environment_and_workdir(app, capsys):
    app.lib("/env/libfoo.so.1")
    app.exe("/usr/bin/rel", needed=["libc.so.6", "libfoo.so.1"], runpath="lib")
    app.lib("/srv/lib/libfoo.so.1")
    code, out, _ = cli(capsys, "--root", str(app.root), "--env", "LD_LIBRARY_PATH=/env",
                       "--rules=", "/usr/bin/app")
    assert code == 0 and "/env/libfoo.so.1\n" in out
    code, out, err = cli(capsys, "--root", str(app.root), "--workdir", "/srv", "--rules=", "-v",
                         "/usr/bin/rel")
    assert code == 0 and "/srv/lib/libfoo.so.1\n" in out
    assert "search path element 'lib' is relative" in err


@pytest.mark.parametrize("args, message", [
    (["--root", "/nonexistent-root", "/x"], "--root /nonexistent-root: not a directory"),
    (["--rules", "bogus", "/x"], "--rules: unknown rule 'bogus'"),
    (["--env", "NOEQUALS", "/x"], "--env 'NOEQUALS': expected NAME=VALUE"),
])
def test_bad_input(app, capsys, args, message):
    if args[0] != "--root":
        args = ["--root", str(app.root), *args]
    code, out, err = cli(capsys, *args)
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"acigen-extract-deps: error: {message}"


def test_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["/x"])
    assert exc.value.code == 2


def test_console_script_and_module(app):
    proc = subprocess.run([sys.executable, "-m", "acigen.helpers.extract_deps", "--root",
                           str(app.root), "--rules=", "/usr/bin/app"],
                          capture_output=True, text=True, check=True)
    assert "/opt/foo/libfoo.so.1\n" in proc.stdout


def test_names_that_are_not_text_stay_one_line(app):
    """A program named in Latin-1 is listed by its bytes; a needed name with a
    newline is one escaped error line (both were internal errors)."""
    odd = "/usr/bin/caf\udce9"
    app.exe(odd, needed=["libc.so.6"])
    app.exe("/usr/bin/nl", needed=["lib\nx.so", "libc.so.6"])
    command = [sys.executable, "-m", "acigen.helpers.extract_deps", "--root", str(app.root)]
    utf8 = dict(os.environ, PYTHONIOENCODING="utf-8:strict")  # as in a UTF-8 locale
    listed = subprocess.run([*command, os.fsencode(odd)], capture_output=True, env=utf8,
                            check=False)
    assert listed.returncode == 0 and b"/usr/bin/caf\xe9\n" in listed.stdout
    failed = subprocess.run([*command, "/usr/bin/nl"], capture_output=True, check=False)
    assert failed.returncode == 1
    assert failed.stderr.decode().splitlines() == [
        "acigen-extract-deps: error: lib\\nx.so needed by /usr/bin/nl: not found (searched: "
        "/etc/ld.so.cache (absent), /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, "
        "/usr/lib)"]


def fifo(path: Path) -> None:
    os.mkfifo(path)


def char_device(path: Path) -> None:
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers


NOT_REGULAR = [pytest.param(fifo, id="fifo"), pytest.param(char_device, id="device")]


def extract_deps(root: Path, program: str) -> subprocess.CompletedProcess[str]:
    """The command as a step runs it; a hang (a FIFO opened for reading blocks
    until a writer comes) fails the test instead of stopping the suite."""
    return subprocess.run([sys.executable, "-m", "acigen.helpers.extract_deps", "--root",
                           str(root), program], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("make", NOT_REGULAR)
def test_a_library_that_is_no_regular_file_is_an_error_not_a_hang(app, make) -> None:
    (app.root / "opt/foo/libfoo.so.1").unlink()
    make(app.host("/opt/foo/libfoo.so.1"))
    result = extract_deps(app.root, "/usr/bin/app")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "acigen-extract-deps: error: libfoo.so.1 needed by /usr/bin/app: "
        "/opt/foo/libfoo.so.1: not a regular file (the loader stops at this file)\n")


@pytest.mark.parametrize("make", NOT_REGULAR)
def test_a_program_that_is_no_regular_file_is_kept_unread(app, make) -> None:
    make(app.host("/usr/bin/odd"))
    result = extract_deps(app.root, "/usr/bin/odd")
    assert (result.returncode, result.stdout, result.stderr) == (0, "/usr/bin/odd\n", "")


@pytest.mark.parametrize("make", NOT_REGULAR)
def test_opening_what_is_no_regular_file_never_blocks(tmp_path: Path, make) -> None:
    """The resolver reads only what lstat called a regular file; should the
    file change between the two, the open itself (O_NONBLOCK, then fstat)
    still refuses it: shown by calling the two openers directly."""
    make(tmp_path / "odd")
    code = ("import os, sys\n"
            "from acigen.helpers.elf import elffile\n"
            "from acigen.helpers.rootfs.walk import Walker\n"
            "try:\n    Walker(sys.argv[1]).open('/odd')\n"
            "except OSError as exc:\n    print(exc.strerror)\n"
            "path = os.path.join(sys.argv[1], 'odd')\n"
            "try:\n    elffile.load(path, os.lstat(path))\n"
            "except elffile.ElfError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout == "not a regular file\ncannot read file data: not a regular file\n"
