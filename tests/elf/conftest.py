from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from acigen.helpers.elf import Closure, closure
from tests.elf.fixtures import Tree

# what every program of a Debian-layout fixture keeps: the interpreter chain and libc
DEBIAN_BASE = frozenset({
    "/lib", "/lib64", "/usr/lib64/ld-linux-x86-64.so.2",
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6",
})


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "root")


@pytest.fixture
def debian(tree: Tree) -> Tree:
    tree.debian()
    return tree


def run(tree: Tree, *programs: str, **options: object) -> Closure:
    """closure() with no run-time rules unless asked: most cases test the loader only."""
    options.setdefault("rules", ())
    return closure(str(tree.root), list(programs), **options)  # type: ignore[arg-type]


def kept(tree: Tree, *programs: str, **options: object) -> set[str]:
    """The kept files, asserting the closure had no problems."""
    result = run(tree, *programs, **options)
    assert result.problems == ()
    return set(result.files)


@contextmanager
def confined(monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[list[str]]:
    """Fail on any file-system access outside ROOT; yields the paths accessed."""
    prefix = os.fspath(root)
    seen: list[str] = []

    def guard(function):  # type: ignore[no-untyped-def]
        def inner(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(path, (str, bytes, os.PathLike)):
                text = os.fsdecode(path)
                seen.append(text)
                assert text == prefix or text.startswith(prefix + "/"), f"host access: {text}"
            return function(path, *args, **kwargs)
        return inner

    with monkeypatch.context() as patch:
        for name in ("lstat", "stat", "readlink", "listdir", "getxattr", "scandir"):
            patch.setattr(os, name, guard(getattr(os, name)))
        patch.setattr(builtins, "open", guard(builtins.open))
        yield seen
