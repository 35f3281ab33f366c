"""Hostile archives stop the image step by member name, and change nothing
outside the root they are unpacked into."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.unpack.image import unpack_archive
from tests.image.conftest import error_lines, run_helper
from tests.image.hostile import build_corpus, cases
from tests.image.treediff import describe

CASE_NAMES = [case.name for case in cases(Path("/sentinel"))]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """tmp/sentinel (what escapes would hit), tmp/box/root (the root)."""
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret").write_text("do not touch\n")
    (tmp_path / "box" / "root").mkdir(parents=True)
    return tmp_path


def snapshot(world: Path) -> tuple[object, ...]:
    return (sorted(os.listdir(world)), sorted(os.listdir(world / "box")),
            describe(str(world / "sentinel")))


def test_the_corpus_is_big_and_every_message_distinct(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "hostile", tmp_path / "sentinel")
    assert len(corpus) >= 8
    assert len({case.error for case, _ in corpus}) == len(corpus)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_archive_is_refused(world: Path, name: str) -> None:
    corpus = dict((case.name, (case, path)) for case, path in
                  build_corpus(world / "hostile", world / "sentinel"))
    case, archive = corpus[name]
    before = snapshot(world)
    with pytest.raises(HelperError) as failure:
        unpack_archive(str(archive), str(world / "box" / "root"))
    assert re.search(case.error, str(failure.value)), str(failure.value)
    assert snapshot(world) == before
    # and the kernel-level confinement holds under the policy: nothing in the
    # root points a later step outside it either (no hard link to a host file)
    for rel, st in [(p, os.lstat(p)) for p in (world / "box" / "root").rglob("*")]:
        assert st.st_nlink == 1 or rel.is_dir(), rel


def test_error_is_one_line_from_the_cli(world: Path) -> None:
    (case, archive), = [(c, p) for c, p in build_corpus(world / "hostile", world / "sentinel")
                        if c.name == "write-through-own-symlink"]
    before = snapshot(world)
    result = run_helper("unpack", str(archive), str(world / "out"))
    assert result.returncode == 1
    line, = error_lines(result)
    assert line.startswith("acigen-unpack: error: ") and re.search(case.error, line)
    assert not (world / "out").exists()
    assert snapshot(world) == before  # no "out", no temporary sibling left


def test_absolute_names_are_made_relative(world: Path) -> None:
    """Not hostile, but sloppy: /etc/x lands in the root's etc/x."""
    import io
    import tarfile
    archive = world / "abs.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(f"{world}/sentinel/secret")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"mine"))
    before = snapshot(world)
    unpack_archive(str(archive), str(world / "box" / "root"))
    assert snapshot(world)[2] == before[2]
    landed = world / "box" / "root" / str(world).lstrip("/") / "sentinel" / "secret"
    assert landed.read_bytes() == b"mine"
