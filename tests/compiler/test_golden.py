"""Generated files, byte for byte, for several manifests (tests/golden/CASE).

Each case has input/ (manifests and the files they name), an optional
`args` file (acigen's arguments, one per line) and expected/: every file
acigen created or changed in the work directory (build.ninja or Makefile,
the side files under .acigen/, an embedded file), plus `stdout` when acigen
printed something (--dot).  `pytest --update-goldens` rewrites expected/
after a deliberate change; review the diff before committing.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from acigen import cli
from tests.support.tools import ninja

GOLDEN = Path(__file__).parent.parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if p.is_dir())
# machine-specific: they list acigen's own source files
SKIP = ("build.ninja.stamp", "build.ninja.stamp.d", "Makefile.d")  # after HASH-


def arguments(case: Path) -> list[str]:
    args_file = case / "args"
    return args_file.read_text().splitlines() if args_file.exists() else \
        sorted(p.name for p in (case / "input").glob("*.json"))


def snapshot(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes()
            for p in sorted(work.rglob("*")) if p.is_file()}


def generate(case: Path, work: Path, monkeypatch, capsys) -> dict[str, bytes]:
    """Run acigen on a copy of CASE's input; what it wrote or printed."""
    shutil.copytree(case / "input", work, dirs_exist_ok=True)
    before = snapshot(work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("ACIGEN_PYTHON", "/usr/bin/python3")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert cli.main(arguments(case)) == 0, capsys.readouterr().err
    out = {rel: data for rel, data in snapshot(work).items()
           if before.get(rel) != data and os.path.basename(rel).split("-", 1)[-1] not in SKIP}
    printed = capsys.readouterr().out
    if printed:
        out["stdout"] = printed.encode()
    return out


def expected(case: Path) -> dict[str, bytes]:
    top = case / "expected"
    return {str(p.relative_to(top)): p.read_bytes()
            for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path, monkeypatch, capsys, request) -> None:
    got = generate(case, tmp_path / "w", monkeypatch, capsys)
    if request.config.getoption("--update-goldens"):
        shutil.rmtree(case / "expected", ignore_errors=True)
        for rel, data in got.items():
            (case / "expected" / rel).parent.mkdir(parents=True, exist_ok=True)
            (case / "expected" / rel).write_bytes(data)
    want = expected(case)
    assert sorted(got) == sorted(want), "files generated differ from expected/"
    for rel in want:
        if got[rel] != want[rel]:
            diff = difflib.unified_diff(want[rel].decode().splitlines(),
                                        got[rel].decode().splitlines(),
                                        f"expected/{rel}", f"generated/{rel}", lineterm="")
            pytest.fail("\n".join(diff) + "\n\nIf the change is intended: pytest "
                        "--update-goldens, then review and commit tests/golden.")


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def accepted_by_its_tool(case: Path, work: Path, printed: bytes) -> subprocess.CompletedProcess:
    """ninja -n, make -n (through a parent for embedded files), or dot."""
    args = arguments(case)
    if "--dot" in args:
        return subprocess.run(["dot", "-Tsvg"], input=printed, capture_output=True)
    make = option(args, "--format") == "make"
    embedded = option(args, "-f") if "--embed" in args else None
    if embedded:  # a parent in the base directory includes it, first
        image = Path(args[-1]).stem
        parent = "Makefile" if make else "build.ninja"
        # the fragment must not take the parent's default goal
        text = f"include {embedded}\nparent-goal: {image}\n" if make else \
            f"ninja_required_version = 1.10\nsubninja {embedded}\n"
        (work / parent).write_text(text)
    tool = ["make", "-n"] if make else [ninja(), "-n"]
    return subprocess.run(tool, cwd=work, capture_output=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generation_is_stable(case: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Twice gives the same bytes and touches nothing (but a Makefile, whose
    mtime make needs refreshed); its tool accepts the output."""
    work, args = tmp_path / "w", arguments(case)
    first = generate(case, work, monkeypatch, capsys)
    files = [rel for rel in first if rel != "stdout"]
    mtimes = {rel: os.stat(work / rel).st_mtime_ns for rel in files}
    assert cli.main(args) == 0
    assert capsys.readouterr().out.encode() == first.get("stdout", b"")
    assert {rel: (work / rel).read_bytes() for rel in files} == \
        {rel: first[rel] for rel in files}
    refreshed = {rel for rel in files if os.stat(work / rel).st_mtime_ns != mtimes[rel]}
    if option(args, "--format") == "make":
        refreshed.discard(option(args, "-f") or "Makefile")
    assert not refreshed
    result = accepted_by_its_tool(case, work, first.get("stdout", b""))
    assert result.returncode == 0, result.stdout + result.stderr
