"""Shared pieces of the create_python_env tests: build with acigen + ninja, run with runc."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

from tests.support import runc
from tests.support.build import acigen, run_ninja

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = "-aci-packer-build-steps-"
PYENV_311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
_runs = itertools.count()


def example(tmp: Path, name: str) -> Path:
    """A fresh copy of examples/NAME to build in."""
    work = tmp / name
    shutil.copytree(EXAMPLES / name, work)
    return work


def build(work: Path, manifest: str, *acigen_args: str) -> tuple[Path, str]:
    """acigen + real ninja in WORK; the image and ninja's output."""
    acigen(work, *acigen_args, manifest)
    out = run_ninja(work).stdout
    return work / (Path(manifest).stem + ".aci"), out


def manifest(work: Path, steps: list[dict], name: str = "app") -> str:
    """Write a manifest running python by default; returns its file name."""
    work.mkdir(parents=True, exist_ok=True)
    doc = {"name": f"example.com/{name}",
           "app": {"exec": ["/usr/bin/python", "-c", "print('hi')"], "user": "0", "group": "0"},
           STEPS: steps}
    (work / f"{name}.json").write_text(json.dumps(doc, indent=2))
    return f"{name}.json"


def run(image: Path, tmp: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ARGS in IMAGE with runc; asserts success, returns the output."""
    result = runc.run(image, tmp / f"run-{next(_runs)}", args)
    assert result.returncode == 0, f"{args} in {image.name}:\n{result.stdout}{result.stderr}"
    return result


def python_answers(image: Path, tmp: Path, code: str, python: str = "/usr/bin/python") -> str:
    return run(image, tmp, [python, "-c", code]).stdout
