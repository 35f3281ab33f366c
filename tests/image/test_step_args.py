"""What ninja passes a step helper, read without argparse (helpers/layers/step.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from acigen.errors import ExitCode, UsageError
from acigen.helpers.layers.step import _parse


@pytest.mark.parametrize("argv", [
    ["--step", "s.json", "--stamp", "s.stamp", "--depfile", "s.d"],
    ["--step=s.json", "--stamp=s.stamp", "--depfile=s.d"],
    ["--depfile", "s.d", "--stamp=s.stamp", "--step", "s.json"],
])
def test_both_spellings_in_any_order(argv: list[str]) -> None:
    args = _parse(argv)
    assert (args.step, args.stamp, args.depfile) == ("s.json", "s.stamp", "s.d")


def test_depfile_is_optional() -> None:
    assert _parse(["--step", "a", "--stamp", "b"]).depfile is None


@pytest.mark.parametrize(("argv", "said"), [
    (["--step", "a"], "--stamp FILE is required"),
    (["--stamp", "b"], "--step FILE is required"),
    (["--step", "a", "--stamp"], "--stamp needs a file name"),
    (["--step=", "--stamp", "b"], "--step FILE is required"),
    (["--step", "a", "--stamp", "b", "--step", "c"], "unexpected argument '--step'"),
    (["--step", "a", "--stamp", "b", "extra"], "unexpected argument 'extra'"),
    (["--steps", "a", "--stamp", "b"], "unexpected argument '--steps'"),
])
def test_anything_else_is_a_usage_error(argv: list[str], said: str) -> None:
    with pytest.raises(UsageError, match=said):
        _parse(argv)


def test_a_helper_says_it_in_one_line_with_exit_2() -> None:
    result = subprocess.run([sys.executable, "-I", "-m", "acigen.helpers.chroot_run",
                             "--step", "s.json"], capture_output=True, text=True)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr == "acigen-chroot-run: error: --stamp FILE is required\n"
