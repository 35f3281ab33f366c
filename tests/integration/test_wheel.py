"""The package as users get it: a wheel in a fresh virtualenv builds an image."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.tools import validate_aci

REPO = Path(__file__).parent.parent.parent


def test_wheel_in_fresh_venv_builds_the_example(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".acigen", "*.aci"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(source)], check=True)
    wheel = next((tmp_path / "dist").glob("acigen-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True)

    site = next(venv.glob("lib/python3*/site-packages"))
    assert (site / "acigen" / "templates" / "Makefile.j2").is_file()
    assert (site / "acigen" / "helpers" / "pack" / "__main__.py").is_file()
    assert (site / "acigen" / "helpers" / "elf" / "closure.py").is_file()
    assert not (site / "helpers").exists() and not (site / "templates").exists()

    # the README's first command: from the root of a checkout, whose acigen/
    # (without helpers/) must not shadow the installed package
    result = subprocess.run([str(venv / "bin" / "acigen"), "-b", "examples/bash/bash.json"],
                            cwd=source, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"acigen_python = {venv}/bin/python" in (source / "build.ninja").read_text(), \
        "the generated file must run helpers with the interpreter that ran acigen"
    validate_aci(source / "bash.aci")
