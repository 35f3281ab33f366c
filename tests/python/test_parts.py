"""The pieces of create_python_env on their own, with real interpreters and real files.

Compiling: the bytes depend only on the sources (not on how many workers ran),
the compiling interpreter's magic number is used, a broken source is reported
and does not stop the rest.  Probing: a venv's python stands for its base.
Shebangs naming the host interpreter become the image's.  pip wheels: the
Requires-Python check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acigen.helpers.python_env.compile import Source, compile_sources, pyc_path
from acigen.helpers.python_env.pip_install import _compare, console_script, find_wheel
from acigen.helpers.python_env.probe import probe
from acigen.helpers.python_env.tree import image_shebang
from tests.python.support import PYENV_311

PY38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"


def stdlib_sources(count: int) -> list[Source]:
    facts = probe(sys.executable)
    files = sorted(Path(facts.stdlib).glob("*.py"))[:count]
    return [Source(f"/usr/lib/python3.11/{f.name}", f.read_bytes(), False) for f in files]


def test_bytes_do_not_depend_on_the_number_of_workers() -> None:
    python = probe(sys.executable).executable
    sources = stdlib_sources(60)
    one = compile_sources(python, sources, jobs=1)
    many = compile_sources(python, sources, jobs=8)
    again = compile_sources(python, list(reversed(sources)), jobs=3)
    assert len(one.pycs) == 60 and not one.errors
    assert one.pycs == many.pycs == again.pycs


def test_flags_hash_and_the_compiling_interpreters_magic() -> None:
    if not os.path.exists(PY38):
        pytest.skip(f"{PY38} is not on this host")
    source = b"print('hi')\n"
    done = compile_sources(PY38, [Source("/usr/lib/python3.8/a.py", source, True),
                                  Source("/usr/lib/python3.8/b.py", source, False)])
    magic = subprocess.run([PY38, "-c", "import importlib.util, sys; "
                            "sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                           capture_output=True, text=True, check=True).stdout
    checked, unchecked = done.pycs["/usr/lib/python3.8/a.py"], done.pycs["/usr/lib/python3.8/b.py"]
    assert checked[:4].hex() == unchecked[:4].hex() == magic
    assert checked[4:8] == b"\x03\0\0\0" and unchecked[4:8] == b"\x01\0\0\0"
    assert checked[8:16] == unchecked[8:16]  # the source's hash


def test_a_broken_source_is_reported_and_the_rest_compiles() -> None:
    python = probe(sys.executable).executable
    done = compile_sources(python, [Source("/x/bad.py", b"def (:\n", False),
                                    Source("/x/nul.py", b"a = 1\0\n", False),
                                    Source("/x/good.py", b"a = 1\n", False)])
    assert set(done.pycs) == {"/x/good.py"}
    assert done.errors["/x/bad.py"].startswith("SyntaxError: ")
    assert "/x/nul.py" in done.errors


def test_pyc_path() -> None:
    assert pyc_path("/usr/lib/python3.11/json/__init__.py", "cpython-311") == \
        "/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc"


def test_a_venv_python_stands_for_its_base_interpreter() -> None:
    facts = probe(sys.executable)  # the venv running the tests
    assert sys.prefix != sys.base_prefix
    assert facts.executable == os.path.realpath(sys._base_executable)  # type: ignore[attr-defined]
    assert facts.prefix == sys.base_prefix
    assert facts.image_stdlib == "/usr/lib/python3.11"


def test_shebangs_naming_the_host_python_become_the_images() -> None:
    facts = probe(PYENV_311)
    host = f"{facts.prefix}/bin/python3.11".encode()
    assert image_shebang(b"#!" + host + b" -E\nprint()\n", facts) == \
        b"#!/usr/bin/python3.11 -E\nprint()\n"
    for untouched in (b"#!/usr/bin/env python3\n", b"#!/bin/sh\n", b"no shebang\n"):
        assert image_shebang(untouched, facts) == untouched


def test_requires_python_and_the_wheel_found() -> None:
    assert _compare((3, 8, 18), ">=", (3, 7))
    assert not _compare((3, 8, 18), ">=", (3, 9))
    assert _compare((3, 11), "!=", (3, 10))
    wheel = find_wheel(probe(PYENV_311))
    assert "/ensurepip/_bundled/pip-" in wheel
    script = console_script("/usr/bin/python3.11", "pip._internal.cli.main:main")
    assert script.startswith(b"#!/usr/bin/python3.11\n")
    compile(script, "pip", "exec")
