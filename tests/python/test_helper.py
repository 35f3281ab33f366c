"""acigen-python-env driven directly: what it writes, its options, bad input, hostile roots.

By hand (--root DIR, no layers) and as a ninja step (--step, with stamp and
depfile).  The root is checked file by file: the interpreter finds its prefix
at /usr, libpython sits in /usr/lib, every .pyc is hash-based with the image
path as co_filename, pip's RECORD matches what is installed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.python.support import PYENV_311
from tests.support.procs import pids_with

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
HELPER = [sys.executable, "-m", "acigen.helpers.python_env"]
STDLIB = "usr/lib/python3.11"
SITE = f"{STDLIB}/site-packages"

WORKER = "python_env/compile_worker.py"  # the compiler processes python_env starts


def python_env(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*HELPER, "--root", str(root), "--python", PYENV_311, *args],
                          capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def in_chroot(root: Path, *args: str) -> str:
    done = subprocess.run([CHROOT, str(root), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.path.exists(PYENV_311):
        pytest.skip(f"{PYENV_311} is not on this host")
    top = tmp_path_factory.mktemp("python-root")
    done = python_env(top)
    assert done.stdout.startswith("Python 3.11.7 from ")
    assert len(done.stdout.splitlines()) == 1
    return top


def test_the_interpreter_runs_from_usr_with_its_libpython_there(root: Path) -> None:
    assert os.readlink(root / "usr/bin/python") == "python3.11"
    assert os.readlink(root / "usr/bin/python3") == "python3.11"
    assert (root / "usr/lib/libpython3.11.so.1.0").is_file()
    assert not (root / "root").exists()  # nothing of pyenv's prefix
    out = in_chroot(root, "/usr/bin/python3", "-c",
                    "import sys, _ssl; print(sys.prefix, sys.exec_prefix, sys.path[2:])")
    assert out == f"/usr /usr ['/{STDLIB}', '/{STDLIB}/lib-dynload', '/{SITE}']\n"


def test_small_standard_library(root: Path) -> None:
    lib = root / STDLIB
    for gone in ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
                 "distutils", "unittest/test", "ctypes/test"):
        assert not (lib / gone).exists(), gone
    assert not list(lib.glob("config-*/*.a"))
    assert not list(lib.glob("lib-dynload/_test*")) and not list(lib.glob("lib-dynload/_tk*"))
    assert (lib / "json/__init__.py").is_file() and (lib / "unittest/mock.py").is_file()


def test_every_pyc_is_hash_based_and_names_its_image_path(root: Path) -> None:
    pycs = sorted((root / STDLIB).rglob("*.pyc"))
    assert len(pycs) > 400
    for pyc in pycs:
        data = pyc.read_bytes()
        flags = int.from_bytes(data[4:8], "little")
        assert flags == 0b01, f"{pyc}: not an unchecked hash-based pyc"
        source = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
        assert data[8:16] == importlib.util.source_hash(source.read_bytes())
        code = marshal.loads(data[16:])
        assert code.co_filename == "/" + str(source.relative_to(root))
    assert not list((root / SITE).rglob("*.pyc"))  # pip compiles itself when run


def test_pip_scripts_and_record(root: Path) -> None:
    for name in ("pip", "pip3", "pip3.11"):
        assert (root / "usr/bin" / name).read_text().startswith("#!/usr/bin/python3.11\n")
        assert os.access(root / "usr/bin" / name, os.X_OK)
    dist_info = next((root / SITE).glob("pip-*.dist-info"))
    assert not list((root / SITE).rglob("*.exe"))  # Windows launchers left out
    with open(dist_info / "RECORD", newline="") as src:
        rows = list(csv.reader(src))
    listed = {os.path.normpath(root / SITE / path) for path, _, _ in rows}
    installed = {str(p) for p in (root / SITE).rglob("*") if p.is_file()}
    installed |= {str(root / "usr/bin" / n) for n in ("pip", "pip3", "pip3.11")}
    assert listed == installed
    for path, digest, size in rows:
        if digest:
            data = (root / SITE / path).read_bytes()
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert (digest, int(size)) == (f"sha256={expected.decode()}", len(data)), path
    assert in_chroot(root, "/usr/bin/pip", "--version").startswith("pip ")


def test_identities_tmp_and_ca_certificates(root: Path) -> None:
    assert (root / "etc/passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    assert (root / "etc/group").read_text() == "root:x:0:\n"
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert (root / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 1000
    out = in_chroot(root, "/usr/bin/python", "-c",
                    "import ssl; print(ssl.create_default_context().cert_store_stats()"
                    "['x509_ca'] > 0)")
    assert out == "True\n"


def test_keep_tests_and_no_precompile(tmp_path: Path) -> None:
    python_env(tmp_path, "--keep-tests", "--no-precompile")
    lib = tmp_path / STDLIB
    assert (lib / "test/__init__.py").is_file() and (lib / "unittest/test").is_dir()
    assert list(lib.glob("lib-dynload/_testcapi*"))
    assert not list(tmp_path.rglob("__pycache__"))
    assert in_chroot(tmp_path, "/usr/bin/python", "-c", "import test.support; print(1)") \
        == "1\n"


@pytest.mark.parametrize(("python", "message"), [
    ("/nonexistent/python3", "python_exe /nonexistent/python3: no such file on the host"),
    ("/bin/true", "python_exe /bin/true: not a usable Python 3 interpreter"),
    ("/root/.pyenv/versions/2.7.18/bin/python2.7", "not a usable Python 3 interpreter"),
    ("/etc", "python_exe /etc: not an executable file"),
])
def test_bad_python_is_one_line_and_writes_nothing(python: str, message: str,
                                                   tmp_path: Path) -> None:
    if python.startswith("/root/") and not os.path.exists(python):
        pytest.skip(f"{python} is not on this host")
    done = subprocess.run([*HELPER, "--root", str(tmp_path), "--python", python],
                          capture_output=True, text=True)
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert first.startswith("acigen-python-env: error: ") and message in first
    assert all(line.startswith("hint: ") for line in done.stderr.splitlines()[1:])
    assert list(tmp_path.iterdir()) == []


def test_a_hostile_root_cannot_steer_writes_onto_the_host(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "passwd").write_text("host file\n")
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib").symlink_to(victim)  # absolute: must mean ROOT/tmp/.../victim
    (root / "usr/bin/python3").symlink_to(victim / "passwd")
    (root / "etc/ssl").symlink_to("../../../../../../" + str(victim))
    python_env(root)
    assert sorted(p.name for p in victim.iterdir()) == ["passwd"]
    assert (victim / "passwd").read_text() == "host file\n"
    assert os.readlink(root / "usr/bin/python3") == "python3.11"  # the link was replaced
    assert (root / str(victim).lstrip("/") / "python3.11/os.py").is_file()
    assert in_chroot(root, "/usr/bin/python3", "-c", "print(1)") == "1\n"


@pytest.fixture
def step_dir(tmp_path: Path) -> Path:
    (tmp_path / ".acigen/steps").mkdir(parents=True)
    spec = {"acigen": "0.1.0", "label": "t: step 1 create_python_env",
            "layer": ".acigen/layers/01-python-test", "lower": [], "layer_mode": "auto",
            "log": ".acigen/logs/01-python-test.log",
            "step": {"type": "create_python_env", "python_exe": PYENV_311,
                     "keep_tests": False, "precompile": True}}
    (tmp_path / ".acigen/steps/01.json").write_text(json.dumps(spec))
    return tmp_path


STEP_ARGS = ["--step", ".acigen/steps/01.json", "--stamp", ".acigen/layers/01.stamp",
             "--depfile", ".acigen/layers/01.stamp.d"]


@pytest.mark.usefixtures("no_mount_leaks")
def test_as_a_step_it_writes_layer_stamp_and_depfile(step_dir: Path) -> None:
    done = subprocess.run([*HELPER, *STEP_ARGS], cwd=step_dir, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("01-python-test: Python 3.11.7 from ")
    tree = step_dir / ".acigen/layers/01-python-test/tree"
    assert (tree / "usr/bin/python3.11").is_file()
    depfile = (step_dir / ".acigen/layers/01.stamp.d").read_text()
    for host_file in (PYENV_311, "/root/.pyenv/versions/3.11.7/lib/python3.11/os.py",
                      "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"):
        assert f"  {host_file} \\\n" in depfile
    assert json.loads((step_dir / ".acigen/layers/01.stamp").read_text())["summary"]
    assert "moved /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0 -> " \
           "/usr/lib/libpython3.11.so.1.0" in (step_dir / ".acigen/logs/01-python-test.log") \
        .read_text()


@pytest.mark.usefixtures("no_mount_leaks")
def test_interrupted_step_leaves_no_stamp_and_no_process(step_dir: Path) -> None:
    proc = subprocess.Popen([*HELPER, *STEP_ARGS], cwd=step_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pids_with(WORKER) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)  # wait until it is compiling: the last, longest part
    assert pids_with(WORKER), "never saw the compiler workers"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "acigen-python-env: interrupted"
    assert not (step_dir / ".acigen/layers/01.stamp").exists()
    time.sleep(0.2)
    assert not pids_with(WORKER)
