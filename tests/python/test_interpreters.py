"""create_python_env with different host interpreters, and over an existing root.

Each Python lands at /usr and finds its prefix there: pyenv builds (compiled-in
prefix under /root/.pyenv, shared libpython), Debian's /usr/bin/python3.11
(static libpython), the venv running these tests (its base interpreter is
used), the oldest and newest supported versions.  The step may come after
others: over a Debian root, and over another Python, whose own files stay.
"""

from __future__ import annotations

import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.python.support import PYENV_311, build, manifest, python_answers, run
from tests.support.rootfs import debian_minbase_tarball

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_mount_leaks")]

PYENV = "/root/.pyenv/versions"
REPORT = ("import sys, ssl, sqlite3, ctypes, json; "
          "print(sys.prefix, '%d.%d' % sys.version_info[:2], "
          "ssl.create_default_context().cert_store_stats()['x509_ca'] > 0)")
INTERPRETERS = {
    "pyenv-3.11": PYENV_311,
    "debian-3.11": "/usr/bin/python3.11",
    "this-venv": sys.executable,
    "pyenv-3.8": f"{PYENV}/3.8.18/bin/python3.8",
    "pyenv-3.13": f"{PYENV}/3.13.0/bin/python3.13",
}


def tiny_wheel(directory: Path) -> str:
    """A pure-Python wheel any Python >= 3.8 installs: module tiny, ANSWER = 42."""
    directory.mkdir(parents=True)
    name = "tiny-1.0-py3-none-any.whl"
    files = {"tiny.py": "ANSWER = 42\n",
             "tiny-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n",
             "tiny-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: acigen-tests\n"
                                         "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(directory / name, "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
        wheel.writestr("tiny-1.0.dist-info/RECORD",
                       "".join(f"{path},,\n" for path in [*files, "tiny-1.0.dist-info/RECORD"]))
    return name


def _version_of(python: str) -> str:
    name = os.path.basename(os.path.realpath(python))
    return name.removeprefix("python") if name != "python" else "3.11"


@pytest.mark.parametrize("python", list(INTERPRETERS.values()), ids=list(INTERPRETERS))
def test_any_host_python_works_at_usr(python: str, tmp_path: Path) -> None:
    if not os.path.exists(python):
        pytest.skip(f"{python} is not on this host")
    work = tmp_path / "work"
    wheel = tiny_wheel(work / "wheels")
    image, _ = build(work, manifest(work, [
        {"type": "create_python_env", "python_exe": python},
        {"type": "copy_host_files", "files": [["wheels", "/wheels"]]},
        # pip installs into the image whatever the host's policy (PEP 668 on Debian)
        {"type": "cmd", "copy": False, "path": "/usr/bin/pip",
         "args": ["install", "--no-index", "--root-user-action=ignore", f"/wheels/{wheel}"]},
    ]))
    version = _version_of(python) if "venv" not in python else "3.11"
    assert python_answers(image, tmp_path, REPORT) == f"/usr {version} True\n"
    assert python_answers(image, tmp_path, "import tiny; print(tiny.ANSWER)") == "42\n"
    out = run(image, tmp_path, ["/usr/bin/pip", "--version"]).stdout
    assert f"(python {version})" in out
    with tarfile.open(image) as tar:
        assert not [n for n in tar.getnames() if n.startswith("rootfs/root/")]


def test_a_second_python_takes_the_names_and_the_first_still_works(tmp_path: Path) -> None:
    old = f"{PYENV}/3.8.18/bin/python3.8"
    if not os.path.exists(old):
        pytest.skip(f"{old} is not on this host")
    work = tmp_path / "work"
    image, out = build(work, manifest(work, [
        {"type": "create_python_env", "python_exe": old},
        {"type": "create_python_env", "python_exe": PYENV_311},
    ]))
    replaced = out.split("replaced the image's ", 1)[1].split(";")[0]
    assert replaced == ("/usr/bin/pip (a file), /usr/bin/pip3 (a file), "
                        "/usr/bin/python (-> python3.8), /usr/bin/python3 (-> python3.8)")
    code = "import sys, json, ssl; print('%d.%d' % sys.version_info[:2])"
    assert python_answers(image, tmp_path, code, "/usr/bin/python3") == "3.11\n"
    assert python_answers(image, tmp_path, code, "/usr/bin/python3.8") == "3.8\n"
    assert "(python 3.11)" in run(image, tmp_path, ["/usr/bin/pip", "--version"]).stdout


def test_after_other_steps_over_a_debian_root(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(debian_minbase_tarball(), work / "base.tar")
    image, out = build(work, manifest(work, [
        {"type": "image", "path": "base.tar", "devices": True},
        {"type": "create_python_env"},
    ]))
    assert "of the image's libraries with the host's" in out  # said, not hidden
    assert "/etc/passwd" not in out.split("added", 1)[-1]  # Debian's own is kept
    assert python_answers(image, tmp_path, REPORT) == "/usr 3.11 True\n"
    assert run(image, tmp_path, ["/bin/sh", "-c", "grep -c ^daemon: /etc/passwd"]).stdout \
        == "1\n"
