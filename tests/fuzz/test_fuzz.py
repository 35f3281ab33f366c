"""The seeded fuzz suite (issue 16): hostile input costs bounded work and ends
in one line, exit 0 or 1, never an internal error, nothing outside the root.

Tar headers (every field), pax records, the four compressions (gzip also in
the members acigen pushes), ELF headers and dynamic sections, ld.so.conf
graphs, what an image gives `acigen run`, and deep or wide trees.  Each suite
prints its cases, internal errors and slowest case; the seeds are fixed, so a
failure reproduces."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.elf import elffile
from acigen.helpers.extract import __main__ as extract
from acigen.helpers.extract_deps import __main__ as extract_deps
from acigen.helpers.run.cache import identify, parse_manifest
from acigen.helpers.run.config import RunOptions, runtime_config
from acigen.helpers.unpack import __main__ as unpack
from tests.elf.elfwriter import Elf, build
from tests.elf.fixtures import Tree
from tests.fuzz import tars
from tests.fuzz.harness import Score, as_run, run_case, scored
from tests.image.treediff import describe

SEED = 16


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every root, which no case may change."""
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    (sentinel / "secret").write_text("keep\n")
    return sentinel


def unpack_case(score: Score, work: Path, label: str, data: bytes) -> None:
    archive, dest = work / "archive", work / "dest"
    archive.write_bytes(data)

    run_case(score, label, lambda: as_run(unpack.main,
                                          [str(archive), str(dest), "--devices", "skip"]))
    remove_tree(str(dest))
    assert sorted(os.listdir(work)) == ["archive"], f"{label}: left {os.listdir(work)}"


def unpack_suite(name: str, cases: int, make, tmp_path: Path, outside: Path,  # type: ignore[no-untyped-def]
                 capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"{SEED}-{name}")
    work = tmp_path / "work"
    work.mkdir()
    before = describe(str(outside))
    with scored(name, capsys) as score:
        for index in range(cases):
            unpack_case(score, work, f"{name} #{index}", make(rng, str(outside)))
    assert describe(str(outside)) == before


def test_tar_header_fields(tmp_path: Path, outside: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    unpack_suite("tar headers", 800, tars.header_case, tmp_path, outside, capsys)


def test_pax_records(tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unpack_suite("pax records", 500, tars.pax_case, tmp_path, outside, capsys)


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                          check=True).stdout


def _gzip_members(data: bytes) -> bytes:
    """gzip members of 4 KiB that say their lengths: the cache repository's layers."""
    from acigen.helpers.tar.gzipmembers import member
    return b"".join(member(data[at:at + 4096]) for at in range(0, len(data), 4096)) or \
        member(b"")


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress,
               "zstd": _zstd, "gzip-members": _gzip_members}


def compressed_case(rng: random.Random, outside: str) -> bytes:
    """A (maybe malformed) archive compressed, then maybe corrupted or cut,
    maybe with padding after its end marker."""
    data = tars.header_case(rng, outside) if rng.random() < 0.5 else tars.pax_case(rng, outside)
    if rng.random() < 0.2:
        data += bytes(rng.choice([1 << 20, 17 << 20]))  # within, then past the bound
    packed = bytearray(COMPRESSORS[rng.choice(list(COMPRESSORS))](data))
    damage = rng.randrange(3)
    if damage == 1:
        packed[rng.randrange(4, len(packed))] ^= 1 << rng.randrange(8)
    elif damage == 2:
        del packed[rng.randrange(4, len(packed)):]
    return bytes(packed)


def test_four_compressions(tmp_path: Path, outside: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    unpack_suite("compressions", 120, compressed_case, tmp_path, outside, capsys)


# -- ELF files and ld.so.conf -------------------------------------------------

def mutated_elf(rng: random.Random) -> bytes:
    """A valid file, then some of its header, program header and dynamic
    bytes replaced by extremes or noise."""
    elf = Elf(interp="/lib64/ld-linux-x86-64.so.2", needed=["libc.so.6", "libx.so"],
              runpath=rng.choice(["$ORIGIN", "/opt:/l", "$LIB/x"]), soname="s",
              verneed={"libc.so.6": ["GLIBC_2.2.5"]}, verdef=["V1"], imports=["iconv_open"],
              elfclass=rng.choice([32, 64]))
    data = bytearray(build(elf))
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(min(len(data), 400) if rng.random() < 0.6 else len(data))
        width = rng.choice([1, 2, 4, 8])
        data[at:at + width] = rng.choice([b"\xff" * width, bytes(width), rng.randbytes(width),
                                          (0x7FFFFFF0).to_bytes(4, "little")[:width]])
    return bytes(data)


def deps_case(score: Score, root: Path, label: str, *args: str) -> None:
    def body() -> tuple[int, str]:
        code, err = as_run(extract_deps.main, ["--root", str(root), *args])
        # one error line per problem: each must be one
        bad = [line for line in err.splitlines() if not line.startswith(
            ("acigen-extract-deps: error: ", "hint: "))]
        return code, "\n".join(bad[-3:])
    run_case(score, label, body)


def test_elf_headers_and_dynamic_sections(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"{SEED}-elf")
    tree = Tree(tmp_path / "root")
    tree.debian()
    with scored("ELF files", capsys) as score:
        for index in range(800):
            for path in ("/usr/bin/app", "/opt/libx.so"):
                tree.host(path).parent.mkdir(parents=True, exist_ok=True)
                tree.host(path).write_bytes(mutated_elf(rng))
            elffile.forget()
            deps_case(score, tree.root, f"ELF #{index}", "/usr/bin/app")


def ld_so_conf_graph(rng: random.Random, tree: Tree) -> None:
    """N files including each other at random (globs, cycles, self-includes,
    missing files), with directories and junk lines."""
    count = rng.randint(1, 14)
    conf = tree.host("/etc/ld.so.conf.d")
    if conf.exists():
        remove_tree(str(conf))
    conf.mkdir(parents=True)
    lines = ["include /etc/ld.so.conf.d/*.conf"]
    tree.text("/etc/ld.so.conf", "\n".join(lines) + "\n")
    for index in range(count):
        body = [rng.choice(["include *.conf", f"include {rng.randrange(count)}.conf",
                            "include ../ld.so.conf", "/usr/lib", "relative", "hwcap 1 x",
                            "include", "#", "include /nowhere/*", "/lib=libc6"])
                for _ in range(rng.randint(1, 5))]
        tree.text(f"/etc/ld.so.conf.d/{index}.conf", "\n".join(body) + "\n")


def test_ld_so_conf_graphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"{SEED}-ldconf")
    tree = Tree(tmp_path / "root")
    tree.debian()
    tree.exe("/usr/bin/app", needed=["libc.so.6", "libmissing.so"])
    with scored("ld.so.conf graphs", capsys) as score:
        for index in range(100):
            ld_so_conf_graph(rng, tree)
            deps_case(score, tree.root, f"ld.so.conf #{index}", "--cache-mode",
                      "conf", "/usr/bin/app")


# -- what an image gives acigen run --------------------------------------------

GOOD = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/app",
        "labels": [{"name": "os", "value": "linux"}],
        "app": {"exec": ["/bin/sh"], "user": "www", "group": "0",
                "environment": [{"name": "A", "value": "1"}],
                "mountPoints": [{"name": "data", "path": "/data"}],
                "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}],
                "eventHandlers": [{"name": "pre-start", "exec": ["/x"]}],
                "workingDirectory": "/"}}
JUNK: list[object] = [None, True, 0, -1, 1 << 70, 1.5, "", "x", "/", [], [1], {}, {"a": 1},
                      [{}], [[]], "\0", "../..", {"name": 1, "value": []}]


def mutated_manifest(rng: random.Random) -> object:
    """GOOD with a few values replaced by junk of other types, at any depth."""
    doc = json.loads(json.dumps(GOOD))
    for _ in range(rng.randint(1, 3)):
        parent: dict | list = doc  # type: ignore[type-arg]
        key = rng.choice(list(doc))
        while isinstance(parent[key], (dict, list)) and parent[key] and rng.random() < 0.6:
            parent = parent[key]
            key = rng.choice(list(parent)) if isinstance(parent, dict) else \
                rng.randrange(len(parent))
        parent[key] = json.loads(json.dumps(rng.choice(JUNK)))  # a copy: no cycles
    return doc


def image_files(rng: random.Random, root: Path) -> None:
    """/etc/passwd and /etc/group as an image may have them: text, junk,
    missing, a directory, a FIFO."""
    etc = root / "etc"
    if etc.exists():
        remove_tree(str(etc))
    etc.mkdir(parents=True)
    for name in ("passwd", "group"):
        kind = rng.randrange(5)
        if kind == 0:
            (etc / name).write_text("www:x:33:33::/var/www:/bin/sh\nbad\n::\n")
        elif kind == 1:
            (etc / name).write_bytes(rng.randbytes(rng.randrange(200)))
        elif kind == 2:
            (etc / name).mkdir()
        elif kind == 3:
            os.mkfifo(etc / name)


def run_files_case(path: Path, manifest: bytes, root: Path) -> tuple[int, str]:
    try:
        parsed = parse_manifest(str(path), manifest)
        runtime_config(parsed, str(root), RunOptions())
    except HelperError as exc:
        return 1, f"acigen run: error: {exc}\n"
    return 0, ""


def test_what_an_image_gives_acigen_run(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"{SEED}-run")
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "sh").write_bytes(build(Elf()))
    os.chmod(root / "bin" / "sh", 0o755)
    with scored("acigen run files", capsys) as score:
        for index in range(400):
            image_files(rng, root)
            text = json.dumps(mutated_manifest(rng)).encode()
            if rng.random() < 0.1:
                text = rng.choice([text[:rng.randrange(len(text))], b"[" * 5000, b"\xff"])
            run_case(score, f"run #{index}",
                     lambda text=text: run_files_case(tmp_path / "image.aci", text, root))
        aci = tmp_path / "image.aci"
        for index in range(40):  # whole images: identify reads them as acigen run does
            aci.write_bytes(tars.pax_case(rng, "/") if index % 2 else
                            tars.header_case(rng, "/"))
            run_case(score, f"identify #{index}", lambda: _identify(aci))


def _identify(path: Path) -> tuple[int, str]:
    try:
        identify(str(path))
    except HelperError as exc:
        return 1, f"acigen run: error: {exc}\n"
    return 0, ""


# -- deep and wide trees --------------------------------------------------------

@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: a case is timed for our work,
    not for a disk other jobs keep busy (1,400 rmdirs took 4 s on it)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="acigen-fuzz-", dir=shm))
    try:
        yield path
    finally:
        remove_tree(str(path))


@pytest.mark.parametrize("shape", [(1400, 1), (3, 1500), (40, 30)],
                         ids=["deep", "wide", "bushy"])
def test_deep_and_wide_trees(fast_dir: Path, capsys: pytest.CaptureFixture[str],
                             shape: tuple[int, int]) -> None:
    """An archive of the tree unpacks, extract prunes it, its layer goes."""
    tmp_path = fast_dir
    depth, width = shape
    parts = [b"d"] * depth
    members = io.BytesIO()
    for column in range(width):
        name = b"/".join([*parts, b"f%d" % column])
        record = tars.rawtar.pax_record(b"path", name)
        members.write(tars.rawtar.pax(record) + tars.rawtar.member(b"x", b"data"))
    archive = tmp_path / "tree.tar"
    archive.write_bytes(members.getvalue() + tars.rawtar.END)
    root = tmp_path / "root"
    with scored(f"trees {depth}x{width}", capsys) as score:
        run_case(score, "unpack", lambda: as_run(unpack.main, [str(archive), str(root)]))
        Tree(root).elf("/bin/prog", dynamic=False, e_type=2)
        run_case(score, "extract", lambda: as_run(extract.main, [
            "--root", str(root), "--binary", "/bin/prog"]))
        run_case(score, "remove", lambda: (remove_tree(str(root)) or 0, ""))
    assert not root.exists()

