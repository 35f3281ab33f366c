"""Run acigen and the real ninja the way a user does, for tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.tools import ninja


def acigen(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "acigen", *args], cwd=workdir,
                            capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"acigen {' '.join(args)}:\n{result.stderr}"
    return result


def run_ninja(workdir: Path, *args: str, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, NINJA_STATUS="[%f/%t] ", **(env or {}))
    result = subprocess.run([ninja(), *args], cwd=workdir, capture_output=True, text=True,
                            env=full_env)
    if check:
        assert result.returncode == 0, f"ninja {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def steps_run(output: str) -> list[str]:
    """The descriptions of the edges ninja ran, e.g. ['app: step 2 cmd ...']."""
    return re.findall(r"^\[\d+/\d+\] (.*)$", output, re.M)


def step_numbers(output: str) -> list[int]:
    return [int(m) for m in re.findall(r"^\[\d+/\d+\] [^:]+: step (\d+) ", output, re.M)]


def is_noop(workdir: Path) -> bool:
    return "no work to do" in run_ninja(workdir, "-n").stdout


def user_env() -> dict[str, str]:
    """A user's shell after the README's first command: acigen and ninja are
    the ones in the virtualenv's bin."""
    venv_bin = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}")


def shell(command: str, cwd: Path, timeout: float = 3600) -> str:
    """Run COMMAND as a user types it (sh -c, user_env); its output."""
    done = subprocess.run(["sh", "-c", command], cwd=cwd, env=user_env(), capture_output=True,
                          text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command}:\n{output[-4000:]}"
    return output
